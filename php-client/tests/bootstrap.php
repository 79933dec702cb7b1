<?php

declare(strict_types=1);

require dirname(__DIR__) . '/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'Phpsessd\\Tests\\', 15) !== 0) {
        return;
    }
    $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, 15)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});

register_shutdown_function(static function (): void {
    \Phpsessd\Tests\Support\Daemon::stopShared();
});
