<?php
// A slow AJAX endpoint: appends one entry to the session's hit list and
// keeps the session open while it "works".
$started = session_start();
$granted = microtime(true);
if ($started) {
    $_SESSION['hits'][] = $_GET['tok'] ?? 'x';
}
usleep((int)($_GET['sleep'] ?? 200) * 1000);
header('Content-Type: application/json');
echo json_encode([
    'started' => $started,
    'id' => session_id(),
    'granted' => $granted,
    'seen' => $started ? count($_SESSION['hits']) : -1,
    'user' => $_SESSION['user'] ?? null,
    'pid' => getmypid(),
]);
