<?php

declare(strict_types=1);

namespace Phpsessd\Exception;

/**
 * A key under the daemon's `fail` conflict rule was changed by this request
 * and by another one; nothing was stored.
 */
class ConflictException extends ServerException
{
}
