<?php

declare(strict_types=1);

namespace Phpsessd\Exception;

/**
 * Base of everything the client throws, so an app can catch the whole family
 * in one place.
 */
class PhpsessdException extends \RuntimeException
{
}
