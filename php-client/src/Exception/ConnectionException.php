<?php

declare(strict_types=1);

namespace Phpsessd\Exception;

/**
 * The daemon could not be reached, or the connection broke or timed out.
 * Whether the command ran on the daemon is unknown unless the message says
 * it was never sent.
 */
class ConnectionException extends PhpsessdException
{
}
