<?php

require __DIR__ . '/_lib.php';

$ok = session_start();
$old = session_id();
$regenerated = $ok && session_regenerate_id(true);
$new = session_id();
if ($regenerated) {
    $_SESSION['regenerated'] = true;
}
wasm_test_done(['ok' => $ok, 'regenerated' => $regenerated, 'old' => $old, 'new' => $new]);
