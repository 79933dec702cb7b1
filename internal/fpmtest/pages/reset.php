<?php
// Changes the session, then throws the changes away with session_reset().
$started = session_start();
$_SESSION['user'] = 'mallory';
$ok = session_reset();
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'reset' => $ok, 'user' => $_SESSION['user'] ?? null]);
