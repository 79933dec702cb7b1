<?php
// Login hardening: a new id mid-session while other tabs are still busy.
$started = session_start();
usleep((int)($_GET['pre'] ?? 0) * 1000);
$old = session_id();
$ok = $started && session_regenerate_id(true);
if ($ok) {
    $_SESSION['regenerated'] = true;
}
usleep((int)($_GET['post'] ?? 0) * 1000);
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'regenerated' => $ok, 'old' => $old, 'id' => session_id()]);
