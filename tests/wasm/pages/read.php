<?php

require __DIR__ . '/_lib.php';

$ok = session_start();
$session = $ok ? $_SESSION : null;
$id = session_id();
session_write_close();
wasm_test_done(['ok' => $ok, 'id' => $id, 'session' => $session]);
