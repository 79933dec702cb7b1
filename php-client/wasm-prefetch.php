<?php

/*
 * php-client for PHP.wasm runtimes without JSPI (Asyncify builds, e.g.
 * @php-wasm/node on Node 20), where socket I/O inside a session handler
 * callback crashes the runtime. Use it instead of bootstrap.php, at the very
 * top of the page or as auto_prepend_file, with the same settings:
 *
 *     auto_prepend_file = /path/to/php-client/wasm-prefetch.php
 *     phpsessd.address  = "tcp://127.0.0.1:7480"
 *     phpsessd.token    = "..."
 *
 * It reads the session here, at top level, before the app calls
 * session_start(); the handler callbacks then only work in memory, and the
 * write goes out at the end of the request (or earlier with
 * \Phpsessd\Wasm\PrefetchHandler::current()->flush() after
 * session_write_close()). See docs/wasm.md.
 *
 * Like bootstrap.php it prints nothing and leaves no variables behind; it
 * returns the handler (null when phpsessd is not configured).
 */

return (static function () {
    if (!function_exists('session_set_save_handler')) {
        return null;
    }
    if (!class_exists('Phpsessd\\Wasm\\PrefetchHandler')) {
        require_once __DIR__ . '/autoload.php';
    }

    try {
        $config = \Phpsessd\Config::fromEnvironment();
    } catch (\InvalidArgumentException $e) {
        trigger_error('phpsessd: ' . $e->getMessage() . '; PHP\'s own session handler stays in use', E_USER_WARNING);
        return null;
    }
    if ($config->address === null) {
        return null;
    }
    if (session_status() !== PHP_SESSION_NONE) {
        trigger_error(
            'phpsessd: a session is already active (session.auto_start?), phpsessd cannot take over',
            E_USER_WARNING
        );
        return null;
    }

    if ($config->cookieDefaults) {
        \Phpsessd\CookieDefaults::apply(isset($_SERVER) && is_array($_SERVER) ? $_SERVER : []);
    }
    $handler = \Phpsessd\Wasm\PrefetchHandler::fromConfig($config);
    if (!$handler->register()) {
        return null;
    }
    // A failure already raised a warning naming the daemon's address;
    // session_start() then returns false as with bootstrap.php.
    $handler->prefetch();

    return $handler;
})();
