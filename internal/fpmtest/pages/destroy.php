<?php
// Logout.
$started = session_start();
$ok = $started && session_destroy();
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'destroyed' => $ok]);
