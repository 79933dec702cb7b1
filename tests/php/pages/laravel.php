<?php
// A slow AJAX endpoint on Laravel's session store, driven the way Laravel's
// StartSession middleware drives it: the id comes from the cookie (setId),
// start() reads through the handler before the controller runs, the
// controller changes attributes, save() writes through the handler once the
// response is ready. A whole Laravel application would add routing and
// cookie encryption around exactly these calls, nothing the handler sees.
// ?driver= is the session driver:
//   phpsessd  Phpsessd\Laravel\SessionHandler (Session::extend('phpsessd'))
//   file      Laravel's own FileSessionHandler, in $_SERVER['LARAVEL_SESSION_FILES']
// ?op=login seeds a session, ?op=show reports it, anything else
// pushes ?tok= onto the "hits" attribute and works ?sleep= ms.
require_once 'Illuminate/Session/autoload.php';
require_once $_SERVER['PHPSESSD_AUTOLOAD'];

use Illuminate\Filesystem\Filesystem;
use Illuminate\Session\FileSessionHandler;
use Illuminate\Session\Store;

$config = ['lifetime' => 120, 'cookie' => 'laravel_session'];
$op = $_GET['op'] ?? 'hit';

if (($_GET['driver'] ?? 'phpsessd') === 'file') {
    $handler = new FileSessionHandler(new Filesystem(), $_SERVER['LARAVEL_SESSION_FILES'], $config['lifetime']);
} else {
    $handler = Phpsessd\Laravel\SessionHandler::fromConfig(Phpsessd\Config::fromEnvironment(), $config['lifetime']);
}
$session = new Store($config['cookie'], $handler);
$session->setId($_COOKIE[$config['cookie']] ?? null);

$started = $session->start();
$granted = microtime(true);
if ($op === 'login') {
    $session->put('user', 'alice');
} elseif ($op !== 'show') {
    $session->push('hits', $_GET['tok'] ?? 'x');
    usleep((int) ($_GET['sleep'] ?? 200) * 1000);
}
$hits = $session->get('hits', []);

setcookie($config['cookie'], $session->getId(), ['path' => '/', 'httponly' => true, 'samesite' => 'lax']);
$session->save();
header('Content-Type: application/json');
echo json_encode([
    'started' => $started,
    'id' => $session->getId(),
    'granted' => $granted,
    'seen' => count($hits),
    'hits' => $hits,
    'user' => $session->get('user'),
    'pid' => getmypid(),
]);
