<?php

require __DIR__ . '/_lib.php';

$ok = session_start();
if ($ok) {
    $_SESSION['user'] = (string) ($_GET['user'] ?? '');
    $_SESSION['log'] = [];
}
wasm_test_done(['ok' => $ok, 'id' => session_id()]);
