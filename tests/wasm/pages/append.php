<?php

require __DIR__ . '/_lib.php';

$ok = session_start();
if ($ok) {
    $_SESSION['log'][] = (string) ($_GET['tag'] ?? '');
}
$met = wasm_test_barrier();
wasm_test_done(['ok' => $ok, 'id' => session_id(), 'barrier' => $met]);
