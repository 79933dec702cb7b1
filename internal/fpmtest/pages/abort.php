<?php
// Changes the session, then ends it without saving.
$started = session_start();
$_SESSION['user'] = 'mallory';
$ok = session_abort();
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'aborted' => $ok]);
