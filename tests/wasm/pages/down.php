<?php

require __DIR__ . '/_lib.php';

$started = microtime(true);
$ok = session_start();
wasm_test_done(['ok' => $ok, 'seconds' => round(microtime(true) - $started, 3)]);
