<?php
// Reads the session and changes nothing.
$started = session_start();
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'id' => session_id(), 'user' => $_SESSION['user'] ?? null]);
