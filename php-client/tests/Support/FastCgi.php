<?php

declare(strict_types=1);

namespace Phpsessd\Tests\Support;

/**
 * The smallest FastCGI responder client that can drive php-fpm in a test:
 * one request per connection, params in, stdout and stderr out.
 */
final class FastCgi
{
    private const BEGIN_REQUEST = 1;
    private const END_REQUEST = 3;
    private const PARAMS = 4;
    private const STDIN = 5;
    private const STDOUT = 6;
    private const STDERR = 7;

    /**
     * @param array<string, string> $params
     * @return array{headers: string, stdout: string, stderr: string}
     */
    public static function request(string $socket, array $params, float $timeout = 10.0): array
    {
        $stream = stream_socket_client('unix://' . $socket, $errno, $errstr, $timeout);
        if ($stream === false) {
            throw new \RuntimeException('php-fpm: ' . $errstr);
        }
        stream_set_timeout($stream, (int) ceil($timeout));
        $body = '';
        foreach ($params as $name => $value) {
            $body .= self::length(strlen($name)) . self::length(strlen($value)) . $name . $value;
        }
        fwrite(
            $stream,
            self::record(self::BEGIN_REQUEST, pack('nCx5', 1, 0))
            . self::record(self::PARAMS, $body)
            . self::record(self::PARAMS, '')
            . self::record(self::STDIN, '')
        );

        $out = ['headers' => '', 'stdout' => '', 'stderr' => ''];
        while (true) {
            $header = self::readExactly($stream, 8);
            $fields = unpack('Cversion/Ctype/nid/nlength/Cpadding/Creserved', $header);
            $content = self::readExactly($stream, $fields['length']);
            self::readExactly($stream, $fields['padding']);
            if ($fields['type'] === self::STDOUT) {
                $out['stdout'] .= $content;
            } elseif ($fields['type'] === self::STDERR) {
                $out['stderr'] .= $content;
            } elseif ($fields['type'] === self::END_REQUEST) {
                break;
            }
        }
        fclose($stream);
        $split = strpos($out['stdout'], "\r\n\r\n");
        if ($split !== false) {
            $out['headers'] = (string) substr($out['stdout'], 0, $split);
            $out['stdout'] = (string) substr($out['stdout'], $split + 4);
        }

        return $out;
    }

    private static function record(int $type, string $content): string
    {
        return pack('CCnnCx', 1, $type, 1, strlen($content), 0) . $content;
    }

    private static function length(int $length): string
    {
        return $length < 128 ? chr($length) : pack('N', $length | 0x80000000);
    }

    /**
     * @param resource $stream
     */
    private static function readExactly($stream, int $length): string
    {
        $data = '';
        while (strlen($data) < $length) {
            $chunk = fread($stream, $length - strlen($data));
            if ($chunk === false || $chunk === '') {
                throw new \RuntimeException('php-fpm closed the connection');
            }
            $data .= $chunk;
        }

        return $data;
    }
}
