<?php
// Logs a user in and seeds the session: s_<key>=string, i_<key>=int.
$started = session_start();
if ($started) {
    $_SESSION['user'] = $_GET['user'] ?? 'alice';
    foreach ($_GET as $k => $v) {
        if (strncmp($k, 's_', 2) === 0) {
            $_SESSION[substr($k, 2)] = (string)$v;
        } elseif (strncmp($k, 'i_', 2) === 0) {
            $_SESSION[substr($k, 2)] = (int)$v;
        }
    }
}
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'id' => session_id()]);
