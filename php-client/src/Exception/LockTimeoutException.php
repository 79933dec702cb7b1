<?php

declare(strict_types=1);

namespace Phpsessd\Exception;

/**
 * The session lock was not granted before the wait deadline.
 */
class LockTimeoutException extends ServerException
{
}
