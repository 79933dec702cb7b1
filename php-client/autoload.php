<?php

/*
 * Class loader for installs without Composer (a plain copy of this
 * directory). With Composer, its own autoloader covers the same namespace.
 */

spl_autoload_register(static function ($class) {
    if (strncmp($class, 'Phpsessd\\', 9) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 9)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
