<?php

declare(strict_types=1);

namespace Phpsessd\Exception;

/**
 * No reply in time. Kept apart from other connection failures because a
 * timed-out command is never retried: the daemon may still be working on it.
 */
class TimeoutException extends ConnectionException
{
}
