<?php
// Takes the session, tells the test which worker holds it, then works for
// a long time (the test kills this worker).
$started = session_start();
if ($started) {
    $_SESSION['holder'] = getmypid();
}
if (isset($_GET['pidfile'])) {
    file_put_contents($_GET['pidfile'] . '.tmp', (string)getmypid());
    rename($_GET['pidfile'] . '.tmp', $_GET['pidfile']);
}
usleep((int)($_GET['sleep'] ?? 10000) * 1000);
header('Content-Type: application/json');
echo json_encode(['started' => $started]);
