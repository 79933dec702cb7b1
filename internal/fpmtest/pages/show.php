<?php
// Reports the session as the next request sees it, without writing.
$started = session_start(['read_and_close' => true]);
header('Content-Type: application/json');
echo json_encode(['started' => $started, 'id' => session_id(), 'session' => $started ? $_SESSION : null]);
