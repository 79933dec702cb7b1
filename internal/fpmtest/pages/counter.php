<?php
// The throughput page: one increment per request.
$started = session_start();
if ($started) {
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
}
header('Content-Type: text/plain');
echo $started ? $_SESSION['n'] : 'fail';
