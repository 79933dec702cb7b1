<?php
// Touches the shapes real apps keep in a session, all at once: a key of
// its own, an entry in a nested array shared with other requests, a list
// append and a counter.
$started = session_start();
$i = (int)($_GET['i'] ?? 0);
if ($started) {
    $_SESSION["k$i"] = $i;
    $_SESSION['cart']['items']["sku$i"] = ['qty' => $i, 'name' => "item $i"];
    $_SESSION['cart']['updated_by'] = $i;
    $_SESSION['log'][] = "r$i";
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
}
usleep((int)($_GET['sleep'] ?? 200) * 1000);
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'id' => session_id()]);
