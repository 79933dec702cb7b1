<?php
// Payload generator and checker for phpsessd's phpserialize package.
//
//   php gen-payloads.php cases            one case per line: name TAB kind TAB base64
//                                         (kind: value, php, php_binary, php_serialize)
//   php gen-payloads.php check            reads "kind TAB base64" lines, prints for each
//                                         "OK TAB base64(re-encoded by PHP)" or "FAIL TAB reason"
//   php gen-payloads.php floats           reads 16-hex-digit IEEE-754 bit patterns, prints
//                                         serialize() of each double
//   php gen-payloads.php golden DIR       writes session-4k.* and session-64k.* in all formats
//
// Everything is deterministic (fixed seeds) so the golden files are reproducible.

error_reporting(E_ALL & ~E_DEPRECATED);
ini_set('display_errors', 'stderr');
ini_set('serialize_precision', '-1');
ini_set('unserialize_max_depth', '4096');
ob_start();

require_once __DIR__ . '/classes.inc.php';

// ---- helpers ----------------------------------------------------------------

final class MemHandler implements SessionHandlerInterface {
    public function open($p, $n): bool { return true; }
    public function close(): bool { return true; }
    public function read($id): string|false { return ''; }
    public function write($id, $d): bool { return true; }
    public function destroy($id): bool { return true; }
    public function gc($m): int|false { return 0; }
}

function session_setup() {
    static $done = false;
    if ($done) return;
    $done = true;
    ini_set('session.use_cookies', '0');
    ini_set('session.use_only_cookies', '0');
    ini_set('session.cache_limiter', '');
    ini_set('session.use_strict_mode', '0');
    session_set_save_handler(new MemHandler(), false);
}

// Encodes $vars as $_SESSION with the given serialize_handler.
function session_bytes(string $format, array $vars) {
    session_setup();
    ini_set('session.serialize_handler', $format);
    session_id('gen');
    session_start();
    $_SESSION = $vars;
    $out = session_encode();
    session_abort();
    return $out === false ? '' : $out;
}

// Decodes and re-encodes session data; null when PHP refuses it.
function session_roundtrip(string $format, string $data) {
    session_setup();
    ini_set('session.serialize_handler', $format);
    session_id('chk');
    session_start();
    $ok = @session_decode($data);
    if (!$ok) { @session_abort(); return null; }
    $out = session_encode();
    session_abort();
    return $out === false ? '' : $out;
}

function emit($name, $kind, $bytes) { fwrite(STDOUT, $name . "\t" . $kind . "\t" . base64_encode($bytes) . "\n"); }

// ---- the cases --------------------------------------------------------------

function cases(): array {
    mt_srand(1234);
    $c = [];
    $c['null'] = null; $c['true'] = true; $c['false'] = false;
    $c['int0'] = 0; $c['intneg'] = -1; $c['intmax'] = PHP_INT_MAX; $c['intmin'] = PHP_INT_MIN;
    foreach ([0.1, 0.5, 1.0, -1.5, 1e100, 5e-324, 2.2250738585072014e-308, -0.0, 0.0, INF, -INF, NAN, 1e15, 1e16, 1e17, 1e18,
              1.5e-7, 0.0001, 0.00001, 123456789.125, 1/3, PHP_FLOAT_MAX, PHP_FLOAT_EPSILON, 9007199254740993.0, 0.1 + 0.2] as $i => $f) {
        $c["float$i"] = $f;
    }
    $c['str_empty'] = ''; $c['str_ascii'] = 'hello world';
    $bin = ''; for ($i = 0; $i < 256; $i++) $bin .= chr($i);
    $c['str_binary'] = $bin;
    $c['str_utf8'] = "héllo wörld — 日本語 🎉";
    $c['str_tricky'] = "a\";b|c}d{e:f;\0g";
    $c['str_long'] = str_repeat('0123456789abcdef', 300);
    $c['list'] = [1, 2, 3, 'four', 5.5, null, true];
    $c['assoc'] = ['a' => 1, 'b' => ['c' => 'd'], 'e' => []];
    $c['mixed_keys'] = [5 => 'five', '05' => 'zero-five', '-0' => 'minus-zero', -7 => 'neg', 'x' => 'x', PHP_INT_MAX => 'max', PHP_INT_MIN => 'min', '' => 'empty'];
    $c['sparse'] = [3 => 'a', 1 => 'b', 10 => 'c'];
    $deep = 'leaf'; for ($i = 0; $i < 200; $i++) $deep = [$i => $deep, 'k' => $i];
    $c['deep'] = $deep;
    $c['plain_obj'] = new PlainObj();
    $c['child_obj'] = new ChildObj();
    $std = new stdClass; $std->a = 1; $std->{'0'} = 'zero'; $std->{'with space'} = [1]; $c['stdclass'] = $std;
    $ws = new WithSerialize; $ws->id = 9; $ws->items = ['x', 'y']; $c['with_serialize'] = $ws;
    $c['with_sleep'] = new WithSleep();
    $c['legacy'] = new Legacy(['k' => 'v', 'n' => [1, 2]]);
    $c['raw_legacy'] = new RawLegacy();
    $c['enum_pure'] = Suit::Hearts; $c['enum_backed'] = Status::Banned;
    $c['enums_repeated'] = [Suit::Hearts, Suit::Spades, Suit::Hearts, Status::Active];
    $ao = new ArrayObject(['a' => 1, 'b' => [2]]); $c['arrayobject'] = $ao;
    $st = new SplObjectStorage; $o1 = new stdClass; $st[$o1] = 'data'; $c['splobjectstorage'] = $st;
    $c['datetime'] = new DateTimeImmutable('2024-02-29 12:34:56.789', new DateTimeZone('Europe/Paris'));
    $shared = new stdClass; $shared->n = 1;
    $c['shared_objects'] = [$shared, $shared, ['again' => $shared]];
    $arr = ['x' => 1]; $refs = ['a' => &$arr, 'b' => &$arr, 'c' => $arr];
    $c['references'] = $refs;
    $scalar = 5; $c['scalar_refs'] = [&$scalar, &$scalar, 'n' => $scalar];
    $self = ['a' => 1]; $self['self'] = &$self; $c['self_ref_array'] = $self;
    $so = new stdClass; $so->me = $so; $so->list = [$so]; $c['self_ref_object'] = $so;
    $inner = new stdClass; $lg = new Legacy([$inner, $inner]);
    $c['legacy_inner_slots'] = [$lg, $inner, $lg];
    $user = new User(42, 'ann@example.com', ['ROLE_USER', 'ROLE_ADMIN']);
    $user->lastLogin = new DateTimeImmutable('2024-01-01 00:00:00', new DateTimeZone('UTC'));
    $c['typed_object'] = $user;
    $cart = new Cart; $cart->add(new CartItem('SKU-1', 'Mug', 2, 9.99, ['color' => 'red'])); $cart->coupon = 'WELCOME';
    $c['cart'] = $cart;
    for ($i = 0; $i < 40; $i++) {
        $c["randfloat$i"] = unpack('e', random_bytes_seeded(8))[1];
    }
    return $c;
}

function random_bytes_seeded(int $n): string { $s = ''; for ($i = 0; $i < $n; $i++) $s .= chr(mt_rand(0, 255)); return $s; }

function cmd_cases() {
    $cases = cases();
    foreach ($cases as $name => $v) {
        emit($name, 'value', serialize($v));
        foreach (['php', 'php_binary', 'php_serialize'] as $f) {
            emit($name, $f, session_bytes($f, ['first' => 1, 'v' => $v, 'after' => 'tail']));
        }
    }
    // Sessions with references across top-level variables (rootless numbering).
    $o = new stdClass; $o->k = 'v';
    $a = [1, 2];
    $vars = ['obj' => $o, 'same' => $o, 'arr' => &$a, 'alias' => &$a, 'list' => [$o, &$a]];
    foreach (['php', 'php_binary', 'php_serialize'] as $f) emit('cross_refs', $f, session_bytes($f, $vars));
    foreach (['php', 'php_binary', 'php_serialize'] as $f) emit('empty', $f, session_bytes($f, []));
    $all = cases();
    unset($all['deep']);
    foreach (['php', 'php_binary', 'php_serialize'] as $f) emit('everything', $f, session_bytes($f, $all));
}

function cmd_check() {
    while (($line = fgets(STDIN)) !== false) {
        $line = rtrim($line, "\r\n");
        if ($line === '') continue;
        [$kind, $b64] = explode("\t", $line, 2);
        $data = base64_decode($b64, true);
        if ($kind === 'value') {
            $failed = false;
            set_error_handler(function () use (&$failed) { $failed = true; return true; }, E_ALL & ~E_DEPRECATED);
            try { $v = unserialize($data); } catch (Throwable $e) { $failed = true; }
            restore_error_handler();
            if ($failed || ($v === false && $data !== serialize(false))) { echo "FAIL\tunserialize refused\n"; continue; }
            echo "OK\t", base64_encode(serialize($v)), "\n";
        } else {
            $out = session_roundtrip($kind, $data);
            if ($out === null) { echo "FAIL\tsession_decode refused\n"; continue; }
            echo "OK\t", base64_encode($out), "\n";
        }

    }
}

function cmd_floats() {
    while (($line = fgets(STDIN)) !== false) {
        $line = trim($line);
        if ($line === '') continue;
        $f = unpack('E', hex2bin($line))[1];
        echo serialize($f), "\n";
    }
}

// ---- golden sessions --------------------------------------------------------

function golden_vars(int $target): array {
    mt_srand(20240229);
    $tok = fn($n) => bin2hex(random_bytes_seeded($n));
    $user = new User(1042, 'jane.doe@example.com', ['ROLE_USER', 'ROLE_EDITOR']);
    $user->lastLogin = new DateTimeImmutable('2024-02-29 08:15:30.123456', new DateTimeZone('Europe/Berlin'));
    $cart = new Cart;
    $vars = [
        '_sf2_attributes' => [
            '_csrf/authenticate' => $tok(32),
            '_csrf/checkout' => $tok(32),
            '_security_main' => serialize(['user' => $user->email, 'roles' => ['ROLE_USER'], 'authenticated' => true]),
            '_security.last_username' => 'jane.doe@example.com',
            'locale' => 'de_DE',
        ],
        '_sf2_meta' => ['u' => 1709194530, 'c' => 1709190000, 'l' => 0],
        '_token' => $tok(20),
        '_previous' => ['url' => 'https://shop.example.com/catalog/mugs?page=2&sort=price'],
        '_flash' => ['old' => [], 'new' => ['status']],
        'status' => 'Artikel wurde in den Warenkorb gelegt — danke!',
        'login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d' => 1042,
        'user' => $user,
        'cart' => $cart,
        'preferences' => ['theme' => 'dark', 'currency' => 'EUR', 'newsletter' => true, 'tz_offset' => 1.0, 'items_per_page' => 24],
        'recently_viewed' => [],
        'search_history' => [],
        'ab_tests' => ['checkout_v2' => 'B', 'price_display' => 'A', 'score' => 0.8734],
    ];
    $products = ['Mug', 'T-Shirt', 'Poster', 'Sticker-Set', 'Notebook', 'Hoodie', 'Cap', 'Tasse „Klassik“', 'Bottle', 'Bag'];
    $i = 0;
    while (true) {
        $p = $products[$i % count($products)];
        $sku = sprintf('SKU-%05d', 1000 + $i);
        $cart->add(new CartItem($sku, $p, mt_rand(1, 5), mt_rand(199, 9999) / 100, ['size' => ['S', 'M', 'L', 'XL'][$i % 4], 'gift' => $i % 3 === 0]));
        $vars['recently_viewed'][] = ['sku' => $sku, 'at' => 1709190000 + $i * 37, 'score' => mt_rand() / mt_getrandmax()];
        if ($i % 2 === 0) $vars['search_history'][] = ['q' => strtolower($p) . ' ' . $tok(2), 'hits' => mt_rand(0, 500)];
        $i++;
        if (strlen(serialize($vars)) >= $target) break;
    }
    return $vars;
}

function to_plain($v) {
    if ($v instanceof UnitEnum) return $v instanceof BackedEnum ? $v->value : $v->name;
    if ($v instanceof DateTimeInterface) return $v->format(DATE_ATOM);
    if (is_object($v)) $v = method_exists($v, '__serialize') ? $v->__serialize() : (array)$v;
    if (is_array($v)) { $o = []; foreach ($v as $k => $x) $o[is_string($k) ? str_replace("\0", '.', $k) : $k] = to_plain($x); return $o; }
    return $v;
}

function cmd_golden(string $dir) {
    foreach (['4k' => 4096, '64k' => 65536] as $label => $target) {
        $vars = golden_vars($target);
        foreach (['php', 'php_binary', 'php_serialize'] as $f) {
            file_put_contents("$dir/session-$label.$f", session_bytes($f, $vars));
        }
        // The same data with objects turned into arrays (enums into their
        // values): what generic decoders without object support can read.
        $plain = json_decode(json_encode(to_plain($vars)), true);
        file_put_contents("$dir/plain-$label.php_serialize", serialize($plain));
    }
}

$cmd = $argv[1] ?? '';
switch ($cmd) {
    case 'cases': cmd_cases(); break;
    case 'check': cmd_check(); break;
    case 'floats': cmd_floats(); break;
    case 'golden': cmd_golden($argv[2] ?? '.'); break;
    default: fwrite(STDERR, "usage: php gen-payloads.php cases|check|floats|golden DIR\n"); exit(2);
}
ob_end_flush();
