<?php

// Run with PHPSESSD_MODE=locked: the requests queue for the lock, so each one
// must see the increments of those before it.
require __DIR__ . '/_lib.php';

$ok = session_start();
$seen = null;
if ($ok) {
    $seen = $_SESSION['n'] ?? 0;
    // Holding the lock a little makes the queue real.
    usleep(50000);
    $_SESSION['n'] = $seen + 1;
}
wasm_test_done(['ok' => $ok, 'seen' => $seen]);
