<?php
// Writes a pair of keys that must always land together.
$started = session_start();
$n = (int)($_GET['n'] ?? 0);
if ($started) {
    $_SESSION["a$n"] = str_repeat(chr(97 + $n % 26), 512);
    $_SESSION["b$n"] = str_repeat(chr(97 + $n % 26), 512);
}
usleep((int)($_GET['sleep'] ?? 0) * 1000);
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'id' => session_id()]);
