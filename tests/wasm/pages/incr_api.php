<?php

require __DIR__ . '/_lib.php';

$ok = session_start();
$value = null;
$error = null;
if ($ok) {
    try {
        $value = \Phpsessd\Session::incr('hits');
    } catch (\Throwable $e) {
        $error = get_class($e) . ': ' . $e->getMessage();
    }
}
$met = wasm_test_barrier();
wasm_test_done(['ok' => $ok, 'value' => $value, 'error' => $error, 'barrier' => $met]);
