using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace RollingReboot.Ssh;

/// <summary>Helpers over an SSH public key blob (RFC 4253 wire format: string type, then the key's fields).</summary>
public static class SshPublicKey
{
    /// <summary>The key type a blob names in its first field (e.g. <c>ssh-ed25519</c>), or null when the blob is malformed.</summary>
    public static string? KeyType(ReadOnlySpan<byte> blob)
    {
        if (blob.Length < 4)
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(blob);
        if (length == 0 || length > 64 || length > (uint)(blob.Length - 4))
        {
            return null;
        }

        var name = blob.Slice(4, (int)length);
        foreach (var b in name)
        {
            // Key type names are printable US-ASCII without spaces (RFC 4251, section 6).
            if (b <= 0x20 || b >= 0x7f)
            {
                return null;
            }
        }

        return Encoding.ASCII.GetString(name);
    }

    /// <summary>The fingerprint OpenSSH shows by default: <c>SHA256:</c> and the unpadded base64 of the blob's SHA-256.</summary>
    public static string Fingerprint(ReadOnlySpan<byte> blob) =>
        "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');

    /// <summary>
    /// The key type a host key algorithm name presents: RSA keys are negotiated as
    /// <c>rsa-sha2-256</c>/<c>rsa-sha2-512</c> but stored as <c>ssh-rsa</c> in known_hosts.
    /// </summary>
    public static string KeyTypeOfAlgorithm(string algorithm) => algorithm switch
    {
        "rsa-sha2-256" or "rsa-sha2-512" => "ssh-rsa",
        "rsa-sha2-256-cert-v01@openssh.com" or "rsa-sha2-512-cert-v01@openssh.com" => "ssh-rsa-cert-v01@openssh.com",
        _ => algorithm,
    };
}
