using RollingReboot.Lab.Ssh;

namespace RollingReboot.Ssh.Tests;

/// <summary>One real OpenSSH sshd per simulated host on loopback, shared by the tests of the "sshd" collection.</summary>
public sealed class LabSshdFixture : IAsyncLifetime
{
    private readonly TempDirectory _state = new();
    private LabSshd? _sshd;

    /// <summary>One address per test that needs its own host, so tests never share a host's state.</summary>
    public static IReadOnlyList<string> Addresses { get; } = [.. Enumerable.Range(2, 14).Select(i => $"127.0.0.{i}")];

    public LabSshd Sshd => _sshd ?? throw new InvalidOperationException("The fixture did not start.");

    public Task InitializeAsync()
    {
        // These tests prove the probe against the real server: they must fail, not skip, without it.
        if (!LabSshd.IsAvailable)
        {
            throw new InvalidOperationException("The SSH tests need a real OpenSSH server. " + LabSshd.NotAvailableMessage);
        }

        _sshd = new LabSshd(_state.File("lab"), LabSshd.FindFreePort(Addresses));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_sshd is not null)
        {
            await _sshd.DisposeAsync();
        }

        _state.Dispose();
    }

    /// <summary>Options that log in to the lab's hosts as the lab tells the CLI to.</summary>
    public SshProbeOptions Options() => new()
    {
        User = Sshd.User,
        Port = Sshd.Port,
        PrivateKeyPath = Sshd.PrivateKeyPath,
        KnownHostsPath = Sshd.KnownHostsPath,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        CommandTimeout = TimeSpan.FromSeconds(10),
    };
}

[CollectionDefinition("sshd")]
public sealed class SshdCollection : ICollectionFixture<LabSshdFixture>;
