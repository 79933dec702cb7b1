<?php

declare(strict_types=1);

namespace Phpsessd;

/**
 * An error reply as a value. Errors can sit inside arrays, so the parser
 * returns them instead of throwing; Connection turns a top-level one into
 * an exception.
 */
final class RespError
{
    /** @var string */
    private $code;

    /** @var string */
    private $message;

    public function __construct(string $code, string $message)
    {
        $this->code = $code;
        $this->message = $message;
    }

    /**
     * Splits `CODE message` the way the protocol defines it: the first word is
     * the code.
     */
    public static function fromLine(string $line): self
    {
        $space = strpos($line, ' ');
        if ($space === false) {
            return new self($line, '');
        }

        return new self(substr($line, 0, $space), substr($line, $space + 1));
    }

    public function getCode(): string
    {
        return $this->code;
    }

    public function getMessage(): string
    {
        return $this->message;
    }
}
