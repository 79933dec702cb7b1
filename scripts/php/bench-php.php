<?php
// Measures PHP's own unserialize()+serialize() round trip (and each half)
// on phpsessd's golden payloads, in MB/s of input.
//
//   php bench-php.php [DIR] [SECONDS]
//
// DIR defaults to phpserialize/testdata next to this script. Prints one
// line per payload and operation: "<payload> <op> <MB/s> <cpuMB/s> <µs/op>",
// where MB/s is per wall-clock second and cpuMB/s per second of CPU time
// used by this process (steadier on a shared machine).

error_reporting(E_ALL & ~E_DEPRECATED);
ini_set('serialize_precision', '-1');
require_once __DIR__ . '/classes.inc.php';

$dir = $argv[1] ?? __DIR__ . '/../../phpserialize/testdata';
$seconds = (float)($argv[2] ?? 1.0);

function cpu_ns(): float {
    $r = getrusage();
    return ($r['ru_utime.tv_sec'] + $r['ru_stime.tv_sec']) * 1e9 + ($r['ru_utime.tv_usec'] + $r['ru_stime.tv_usec']) * 1e3;
}

function measure(callable $fn, int $bytes, float $seconds): array {
    // Warm up, then run batches until the time budget is used.
    for ($i = 0; $i < 50; $i++) $fn();
    $n = 0; $start = hrtime(true); $cpu0 = cpu_ns(); $budget = $seconds * 1e9;
    do {
        for ($i = 0; $i < 100; $i++) $fn();
        $n += 100;
        $elapsed = hrtime(true) - $start;
    } while ($elapsed < $budget);
    $cpu = max(cpu_ns() - $cpu0, 1);
    $perOp = $elapsed / $n;                     // ns
    return [$bytes / ($perOp / 1e9) / 1e6, $bytes * $n / ($cpu / 1e9) / 1e6, $perOp / 1e3];
}

foreach (['4k', '64k'] as $size) {
    $data = file_get_contents("$dir/session-$size.php_serialize");
    if ($data === false) { fwrite(STDERR, "missing payload in $dir\n"); exit(1); }
    $value = unserialize($data);
    if (serialize($value) !== $data) { fwrite(STDERR, "payload $size does not round-trip in PHP\n"); exit(1); }
    $len = strlen($data);
    $ops = [
        'roundtrip' => function () use ($data) { return serialize(unserialize($data)); },
        'decode' => function () use ($data) { return unserialize($data); },
        'encode' => function () use ($value) { return serialize($value); },
    ];
    foreach ($ops as $op => $fn) {
        [$mbs, $cpumbs, $us] = measure($fn, $len, $seconds);
        printf("%s %s %.1f %.1f %.1f\n", $size, $op, $mbs, $cpumbs, $us);
    }
}
