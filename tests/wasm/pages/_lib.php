<?php

/*
 * Helpers shared by the scenario pages. Nothing here may produce output
 * before session_start(): the pages print exactly one JSON document at the
 * end, so the runner can parse stdout while warnings go to stderr.
 */

declare(strict_types=1);

$GLOBALS['wasmTestWarnings'] = [];
set_error_handler(static function (int $no, string $message, string $file = '', int $line = 0): bool {
    $GLOBALS['wasmTestWarnings'][] = $message;
    // Let PHP log it too, so stderr keeps the full picture for the report.
    return false;
});

function wasm_test_done(array $result): void
{
    $result['warnings'] = $GLOBALS['wasmTestWarnings'];
    $result['php'] = PHP_VERSION;
    echo json_encode($result);
}

/**
 * Blocks until every parallel request of a round reached this point, so all
 * of them have read the session before any of them writes it. Without this
 * the requests could run one after another and the test would prove nothing
 * about merging.
 */
function wasm_test_barrier(): bool
{
    $port = (int) ($_GET['barrier'] ?? 0);
    if ($port === 0) {
        return true;
    }
    $socket = @stream_socket_client('tcp://127.0.0.1:' . $port, $errno, $errstr, 5.0);
    if ($socket === false) {
        return false;
    }
    stream_set_timeout($socket, 15);
    fwrite($socket, ($_GET['tag'] ?? '?') . "\n");
    $reply = fgets($socket);
    fclose($socket);

    return $reply === "go\n";
}
