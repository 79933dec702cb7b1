<?php
// Two requests setting the same key to different values: the key's
// conflict rule decides.
$started = session_start();
if ($started) {
    $_SESSION['price'] = (int)($_GET['v'] ?? 0);
}
usleep((int)($_GET['sleep'] ?? 200) * 1000);
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'id' => session_id()]);
