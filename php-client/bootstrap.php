<?php

/*
 * Makes phpsessd the session handler of an unmodified app:
 *
 *     auto_prepend_file = /path/to/php-client/bootstrap.php
 *     phpsessd.address  = "unix:///run/phpsessd/phpsessd.sock"
 *
 * Without an address it does nothing, so PHP's own handler stays. It never
 * prints anything (output before session_start() breaks the session cookie)
 * and leaves no variables behind in the app's global scope.
 */

(static function () {
    if (!function_exists('session_set_save_handler')) {
        return;
    }
    // Every request needs the classes below; requiring them by name spares
    // an autoloader call and a file check each. The rest (exceptions) loads
    // on demand.
    $load = static function (array $classes): void {
        foreach ($classes as $class) {
            if (!class_exists('Phpsessd\\' . $class, false)) {
                require __DIR__ . '/src/' . $class . '.php';
            }
        }
    };
    $own = !class_exists('Phpsessd\\Handler');
    if ($own) {
        $load(['Config', 'ModeRules', 'Connection']);
        require_once __DIR__ . '/autoload.php';
    }

    try {
        $config = \Phpsessd\Config::fromEnvironment();
    } catch (\InvalidArgumentException $e) {
        trigger_error('phpsessd: ' . $e->getMessage() . '; PHP\'s own session handler stays in use', E_USER_WARNING);
        return;
    }
    if ($config->address === null) {
        return;
    }
    if ($own) {
        $load(['Resp', 'CookieDefaults', 'Handler', 'Session']);
    }
    if (session_status() !== PHP_SESSION_NONE) {
        trigger_error(
            'phpsessd: a session is already active (session.auto_start?), phpsessd cannot take over',
            E_USER_WARNING
        );
        return;
    }

    if ($config->cookieDefaults) {
        \Phpsessd\CookieDefaults::apply(isset($_SERVER) && is_array($_SERVER) ? $_SERVER : []);
    }
    $handler = \Phpsessd\Handler::fromConfig($config);
    \Phpsessd\Session::setHandler($handler);
    session_set_save_handler($handler, true);
})();
