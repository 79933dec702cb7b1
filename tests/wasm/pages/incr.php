<?php

require __DIR__ . '/_lib.php';

$ok = session_start();
if ($ok) {
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
}
wasm_test_done(['ok' => $ok, 'id' => session_id(), 'n' => $_SESSION['n'] ?? null]);
