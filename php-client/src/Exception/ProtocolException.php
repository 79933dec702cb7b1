<?php

declare(strict_types=1);

namespace Phpsessd\Exception;

/**
 * The bytes received are not a valid reply. The connection is dropped,
 * because after a framing error nothing that follows can be trusted.
 */
class ProtocolException extends ConnectionException
{
}
