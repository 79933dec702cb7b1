<?php

declare(strict_types=1);

namespace Phpsessd\Exception;

/**
 * The daemon answered with an error reply (`-CODE message`).
 */
class ServerException extends PhpsessdException
{
    /** @var string */
    private $errorCode;

    public function __construct(string $errorCode, string $message)
    {
        parent::__construct($message === '' ? $errorCode : $errorCode . ' ' . $message);
        $this->errorCode = $errorCode;
    }

    /**
     * Picks the subclass by code so callers can catch the cases they can act
     * on without string matching.
     */
    public static function fromReply(string $errorCode, string $message): self
    {
        switch ($errorCode) {
            case 'CONFLICT':
                return new ConflictException($errorCode, $message);
            case 'LOCKTIMEOUT':
                return new LockTimeoutException($errorCode, $message);
            default:
                return new self($errorCode, $message);
        }
    }

    /**
     * The protocol's error code: ERR, NOAUTH, WRONGPASS, INVALIDID, CONFLICT, ...
     */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }
}
