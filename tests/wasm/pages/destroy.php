<?php

require __DIR__ . '/_lib.php';

$ok = session_start();
$destroyed = $ok && session_destroy();
wasm_test_done(['ok' => $ok, 'destroyed' => $destroyed]);
