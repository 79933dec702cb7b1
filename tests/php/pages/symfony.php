<?php
// A slow AJAX endpoint written against Symfony HttpFoundation's session, set
// up the way FrameworkBundle sets it up: NativeSessionStorage gets the
// handler named by framework.session.handler_id, Session::save() runs when
// the response is ready. ?handler= picks that handler:
//   phpsessd  the handler bootstrap.php made (handler_id: Phpsessd\Handler)
//   proxy     the same inside Phpsessd\Symfony\SessionHandlerProxy
//   default   none (handler_id: null): Symfony wraps PHP's \SessionHandler
// ?op=login seeds a session, ?op=show reports it, anything else
// appends ?tok= to the "hits" attribute and works ?sleep= ms.
require_once 'Symfony/Component/HttpFoundation/autoload.php';

use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Session\Session;
use Symfony\Component\HttpFoundation\Session\Storage\NativeSessionStorage;

$request = Symfony\Component\HttpFoundation\Request::createFromGlobals();
$op = $request->query->get('op', 'hit');

switch ($request->query->get('handler', 'phpsessd')) {
    case 'phpsessd':
        $handler = Phpsessd\Session::getHandler();
        break;
    case 'proxy':
        $handler = new Phpsessd\Symfony\SessionHandlerProxy(Phpsessd\Session::getHandler());
        break;
    default:
        $handler = null;
}
$session = new Session(new NativeSessionStorage(['cookie_samesite' => 'lax'], $handler));

$started = $session->start();
$granted = microtime(true);
if ($op === 'login') {
    $session->set('user', 'alice');
} elseif ($op === 'migrate') {
    $session->migrate(true);
} elseif ($op !== 'show') {
    $session->set('hits', array_merge($session->get('hits', []), [$request->query->get('tok', 'x')]));
    usleep((int) $request->query->get('sleep', 200) * 1000);
}
$hits = $session->get('hits', []);
$body = [
    'started' => $started,
    'id' => $session->getId(),
    'granted' => $granted,
    'seen' => count($hits),
    'hits' => $hits,
    'user' => $session->get('user'),
    'handler' => ini_get('session.save_handler'),
    'pid' => getmypid(),
];
$session->save();
(new JsonResponse($body))->send();
