<?php

// Talks RESP to the daemon by hand: proves the runtime boots and reaches
// 127.0.0.1 over TCP independently of php-client.
require __DIR__ . '/_lib.php';

$address = (string) ($_GET['address'] ?? '');
$reply = null;
$socket = @stream_socket_client($address, $errno, $errstr, 2.0);
if ($socket !== false) {
    stream_set_timeout($socket, 5);
    fwrite($socket, "*1\r\n\$4\r\nPING\r\n");
    $reply = fgets($socket);
    fclose($socket);
}
wasm_test_done(['reply' => $reply === false ? null : $reply, 'error' => $socket === false ? $errstr : null]);
