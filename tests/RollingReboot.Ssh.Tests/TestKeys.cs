using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace RollingReboot.Ssh.Tests;

/// <summary>Key material for tests: synthetic blobs for parsing, real ssh-keygen keys for the live tests.</summary>
internal static class TestKeys
{
    /// <summary>An SSH wire-format public key blob of the given type with random key material.</summary>
    public static byte[] Blob(string keyType, int materialLength = 32)
    {
        var name = Encoding.ASCII.GetBytes(keyType);
        var material = RandomNumberGenerator.GetBytes(materialLength);
        var blob = new byte[4 + name.Length + 4 + material.Length];
        BinaryPrimitives.WriteUInt32BigEndian(blob, (uint)name.Length);
        name.CopyTo(blob, 4);
        BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(4 + name.Length), (uint)material.Length);
        material.CopyTo(blob, 8 + name.Length);
        return blob;
    }

    public static string Ed25519Base64() => Convert.ToBase64String(Blob("ssh-ed25519"));

    /// <summary>Runs ssh-keygen with the arguments and returns its stdout; fails the test on a non-zero exit.</summary>
    public static string RunKeygen(params string[] arguments)
    {
        var startInfo = new ProcessStartInfo("ssh-keygen")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo)!;
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)), "ssh-keygen hung");
        Assert.True(process.ExitCode == 0, $"ssh-keygen {string.Join(' ', arguments)} failed ({process.ExitCode}): {error.Result}");
        return output;
    }

    /// <summary>Generates an ed25519 key pair with ssh-keygen and returns the private key path.</summary>
    public static string GenerateEd25519(string directory, string name, string passphrase = "")
    {
        var path = Path.Combine(directory, name);
        RunKeygen("-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", path);
        return path;
    }

    /// <summary>The <c>type base64</c> part of a .pub file.</summary>
    public static string PublicKey(string privateKeyPath)
    {
        var fields = File.ReadAllText(privateKeyPath + ".pub").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return $"{fields[0]} {fields[1]}";
    }
}

/// <summary>A temporary directory removed after the test.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Directory.CreateTempSubdirectory("rollreboot-ssh-tests-").FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp directory left behind is harmless.
        }
    }
}
