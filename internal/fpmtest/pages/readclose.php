<?php
// Reads the session and closes it at once; later changes must not be saved.
$started = session_start(['read_and_close' => true]);
$user = $_SESSION['user'] ?? null;
$_SESSION['user'] = 'mallory';
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'user' => $user]);
