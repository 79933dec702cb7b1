<?php
// Tells the harness what this php-fpm offers.
header('Content-Type: application/json');
echo json_encode([
    'php' => PHP_VERSION,
    'sapi' => PHP_SAPI,
    'redis' => extension_loaded('redis'),
    'save_handler' => ini_get('session.save_handler'),
    'auto_prepend_file' => ini_get('auto_prepend_file'),
    'pid' => getmypid(),
]);
