using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Ports;
using RollingReboot.Ssh.Tests.Support;

namespace RollingReboot.Ssh.Tests;

/// <summary>The probe against real OpenSSH servers started by the lab on loopback.</summary>
[Collection("sshd")]
public sealed class SshHostProbeTests(LabSshdFixture fixture) : IDisposable
{
    private readonly TempDirectory _temp = new();

    private Lab.Ssh.LabSshd Sshd => fixture.Sshd;

    public void Dispose() => _temp.Dispose();

    private static string NewBootId() => Guid.NewGuid().ToString();

    private static string Address(int index) => LabSshdFixture.Addresses[index];

    [Fact]
    public async Task GetBootId_LabEnvironment_LogsInWithKeyAndReadsBootId()
    {
        var bootId = NewBootId();
        await Sshd.StartHostAsync("xen-auth", Address(0), bootId);
        try
        {
            // Exactly what the CLI does with the environment the lab gives it.
            var options = SshProbeOptions.FromEnvironment(name => Sshd.CliEnvironment.GetValueOrDefault(name));
            var probe = new SshHostProbe(options);

            var result = await probe.GetBootIdAsync("xen-auth", Address(0));

            Assert.Equal(ProbeOutcome.Answered, result.Outcome);
            Assert.Equal(bootId, result.BootId);
        }
        finally
        {
            await Sshd.StopHostAsync("xen-auth");
        }
    }

    [Fact]
    public async Task LabSshd_RealOpenSshClient_VerifiesHostKeyAndReadsBootId()
    {
        // The lab's sshd, key and known_hosts, checked with OpenSSH's own client, strict host key checking on.
        var bootId = NewBootId();
        await Sshd.StartHostAsync("xen-openssh", Address(1), bootId);
        try
        {
            var startInfo = new ProcessStartInfo("ssh")
            {
                ArgumentList =
                {
                    "-F", "/dev/null", "-i", Sshd.PrivateKeyPath, "-p", Sshd.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
                    "-o", $"UserKnownHostsFile={Sshd.KnownHostsPath}", "-o", "GlobalKnownHostsFile=/dev/null",
                    $"{Sshd.User}@{Address(1)}", "cat /proc/sys/kernel/random/boot_id",
                },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            using var ssh = Process.Start(startInfo)!;
            ssh.StandardInput.Close();
            var stderr = ssh.StandardError.ReadToEndAsync();
            var stdout = await ssh.StandardOutput.ReadToEndAsync();
            await ssh.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));

            Assert.True(ssh.ExitCode == 0, $"ssh failed ({ssh.ExitCode}): {await stderr}");
            Assert.Equal(bootId, stdout.Trim());
        }
        finally
        {
            await Sshd.StopHostAsync("xen-openssh");
        }
    }

    [Fact]
    public async Task WaitForNewBoot_AcrossSimulatedRestart_ProvesTheNewBoot()
    {
        var firstBoot = NewBootId();
        var secondBoot = NewBootId();
        var probe = new SshHostProbe(fixture.Options());
        await Sshd.StartHostAsync("xen-restart", Address(2), firstBoot);
        try
        {
            var before = await probe.GetBootIdAsync("xen-restart", Address(2));
            Assert.Equal(firstBoot, before.BootId);

            // The host goes down for its reboot.
            await Sshd.StopHostAsync("xen-restart");
            Assert.Equal(ProbeOutcome.HostDown, (await probe.GetBootIdAsync("xen-restart", Address(2))).Outcome);

            var firstProbeSeen = new TaskCompletionSource<ProbeResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            var outcomes = new List<ProbeOutcome>();
            var wait = BootProof.WaitForNewBootAsync(probe, "xen-restart", Address(2), firstBoot, TimeSpan.FromSeconds(30),
                TimeProvider.System, new Recorder(r =>
                {
                    lock (outcomes)
                    {
                        outcomes.Add(r.Outcome);
                    }

                    firstProbeSeen.TrySetResult(r);
                }));

            // While the wait runs against the down host, the host comes back in a new boot.
            Assert.Equal(ProbeOutcome.HostDown, (await firstProbeSeen.Task.WaitAsync(TimeSpan.FromSeconds(20))).Outcome);
            Sshd.SetBootId("xen-restart", secondBoot);
            await Sshd.StartHostAsync("xen-restart", Address(2), secondBoot);

            var result = await wait.WaitAsync(TimeSpan.FromSeconds(40));

            Assert.True(result.Proven, result.LastProbe.Detail);
            Assert.Equal(secondBoot, result.BootId);
            Assert.True(result.Attempts >= 2);
            lock (outcomes)
            {
                Assert.Equal(ProbeOutcome.HostDown, outcomes[0]);
                Assert.Equal(ProbeOutcome.Answered, outcomes[^1]);
            }
        }
        finally
        {
            await Sshd.StopHostAsync("xen-restart");
        }
    }

    [Fact]
    public async Task LabHost_Down_RefusesAndResetsOpenSessions_UpAgain_AnswersTheNewBoot()
    {
        var firstBoot = NewBootId();
        var secondBoot = NewBootId();
        var probe = new SshHostProbe(fixture.Options());
        await Sshd.StartHostAsync("xen-gate", Address(13), firstBoot);
        try
        {
            // A session open when the host loses power: the banner came through the gate.
            using var tcp = new TcpClient(AddressFamily.InterNetwork);
            await tcp.ConnectAsync(IPAddress.Parse(Address(13)), Sshd.Port);
            var stream = tcp.GetStream();
            var buffer = new byte[256];
            var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.StartsWith("SSH-", Encoding.ASCII.GetString(buffer, 0, read), StringComparison.Ordinal);

            await Sshd.StopHostAsync("xen-gate");

            Assert.False(Sshd.IsRunning("xen-gate"));
            Assert.True(await EndsAsync(stream).WaitAsync(TimeSpan.FromSeconds(10)), "the open session outlived the host");
            Assert.Equal(ProbeOutcome.HostDown, (await probe.GetBootIdAsync("xen-gate", Address(13))).Outcome);

            await Sshd.StartHostAsync("xen-gate", Address(13), secondBoot);

            Assert.True(Sshd.IsRunning("xen-gate"));
            var after = await probe.GetBootIdAsync("xen-gate", Address(13));
            Assert.True(after.Outcome == ProbeOutcome.Answered, after.Detail);
            Assert.Equal(secondBoot, after.BootId);
        }
        finally
        {
            await Sshd.StopHostAsync("xen-gate");
        }

        static async Task<bool> EndsAsync(NetworkStream stream)
        {
            var rest = new byte[4096];
            try
            {
                // Whatever sshd still sent may arrive first; then the end (EOF or a reset), never a hang.
                while (await stream.ReadAsync(rest) > 0)
                {
                }

                return true;
            }
            catch (IOException)
            {
                return true;
            }
        }
    }

    [Fact]
    public async Task WaitForNewBoot_SshdRestartedInSameBoot_IsNotANewBoot()
    {
        var bootId = NewBootId();
        var probe = new SshHostProbe(fixture.Options());
        await Sshd.StartHostAsync("xen-same", Address(3), bootId);
        try
        {
            // The SSH service restarts but the host did not reboot: its boot id is unchanged.
            await Sshd.StopHostAsync("xen-same");
            await Sshd.StartHostAsync("xen-same", Address(3), bootId);
            var clock = new SteppedClock();

            // The wait's clock is fake (probes at 0, 1, 3 and 7 s, deadline at 8 s); the probes are real.
            var result = (await clock.RunAsync(
                BootProof.WaitForNewBootAsync(probe, "xen-same", Address(3), bootId, TimeSpan.FromSeconds(8), clock),
                timersWhenFirstParked: 2))!;

            Assert.False(result.Proven);
            Assert.True(result.TimedOut);
            Assert.Equal(4, result.Attempts);
            Assert.True(result.LastProbe.Outcome == ProbeOutcome.Answered, result.LastProbe.Detail);
            Assert.Equal(bootId, result.LastProbe.BootId);
            Assert.Contains("still in the previous boot", result.LastProbe.Detail, StringComparison.Ordinal);
        }
        finally
        {
            await Sshd.StopHostAsync("xen-same");
        }
    }

    [Fact]
    public async Task GetBootId_HostKeyChanged_IsRejectedEvenWithAcceptNew()
    {
        await Sshd.StartHostAsync("xen-changed", Address(4), NewBootId());
        try
        {
            var impostorKey = TestKeys.PublicKey(TestKeys.GenerateEd25519(_temp.Path, "old_host_key"));
            var knownHosts = _temp.File("known_hosts");
            var content = $"[{Address(4)}]:{Sshd.Port} {impostorKey}\n";
            File.WriteAllText(knownHosts, content);
            var probe = new SshHostProbe(fixture.Options() with { KnownHostsPath = knownHosts, AcceptNew = true });

            var result = await probe.GetBootIdAsync("xen-changed", Address(4));

            Assert.Equal(ProbeOutcome.HostKeyRejected, result.Outcome);
            Assert.Null(result.BootId);
            Assert.Contains("host key changed", result.Detail, StringComparison.Ordinal);
            Assert.Contains("SHA256:", result.Detail, StringComparison.Ordinal);
            Assert.Equal(content, File.ReadAllText(knownHosts));
        }
        finally
        {
            await Sshd.StopHostAsync("xen-changed");
        }
    }

    [Fact]
    public async Task GetBootId_RevokedHostKey_IsRejected()
    {
        await Sshd.StartHostAsync("xen-revoked", Address(5), NewBootId());
        try
        {
            var hostKey = Sshd.HostPublicKey("xen-revoked");
            var knownHosts = _temp.File("known_hosts");
            File.WriteAllText(knownHosts, $"[{Address(5)}]:{Sshd.Port} {hostKey}\n@revoked * {hostKey}\n");
            var probe = new SshHostProbe(fixture.Options() with { KnownHostsPath = knownHosts });

            var result = await probe.GetBootIdAsync("xen-revoked", Address(5));

            Assert.Equal(ProbeOutcome.HostKeyRejected, result.Outcome);
            Assert.Contains("@revoked", result.Detail, StringComparison.Ordinal);
        }
        finally
        {
            await Sshd.StopHostAsync("xen-revoked");
        }
    }

    [Fact]
    public async Task GetBootId_UnknownHostKey_RefusedWithoutAcceptNew_AcceptedAndAppendedWithIt()
    {
        var bootId = NewBootId();
        await Sshd.StartHostAsync("xen-new", Address(6), bootId);
        try
        {
            var knownHosts = Path.Combine(_temp.Path, "dot-ssh", "known_hosts");
            var strict = new SshHostProbe(fixture.Options() with { KnownHostsPath = knownHosts });

            var refused = await strict.GetBootIdAsync("xen-new", Address(6));

            Assert.Equal(ProbeOutcome.HostKeyRejected, refused.Outcome);
            Assert.Contains("--ssh-accept-new", refused.Detail, StringComparison.Ordinal);
            Assert.Contains("ssh-keyscan", refused.Detail, StringComparison.Ordinal);
            Assert.False(File.Exists(knownHosts));

            var acceptNew = new SshHostProbe(fixture.Options() with { KnownHostsPath = knownHosts, AcceptNew = true });
            var accepted = await acceptNew.GetBootIdAsync("xen-new", Address(6));

            Assert.Equal(ProbeOutcome.Answered, accepted.Outcome);
            Assert.Equal(bootId, accepted.BootId);
            Assert.Equal($"[{Address(6)}]:{Sshd.Port} {Sshd.HostPublicKey("xen-new")}\n", File.ReadAllText(knownHosts));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(knownHosts));

            // Now known: the strict probe accepts it, and nothing more is appended.
            var again = await strict.GetBootIdAsync("xen-new", Address(6));
            Assert.Equal(ProbeOutcome.Answered, again.Outcome);
            Assert.Single(File.ReadAllLines(knownHosts));
        }
        finally
        {
            await Sshd.StopHostAsync("xen-new");
        }
    }

    [Fact]
    public async Task GetBootId_KeyNotAuthorized_IsAuthFailed()
    {
        await Sshd.StartHostAsync("xen-wrongkey", Address(7), NewBootId());
        try
        {
            var wrongKey = TestKeys.GenerateEd25519(_temp.Path, "not_authorized");
            var probe = new SshHostProbe(fixture.Options() with { PrivateKeyPath = wrongKey });

            var result = await probe.GetBootIdAsync("xen-wrongkey", Address(7));

            Assert.Equal(ProbeOutcome.AuthFailed, result.Outcome);
            Assert.Contains(Sshd.User, result.Detail, StringComparison.Ordinal);
        }
        finally
        {
            await Sshd.StopHostAsync("xen-wrongkey");
        }
    }

    [Fact]
    public async Task GetBootId_EncryptedKeyWithoutPassphrase_IsAuthFailed()
    {
        await Sshd.StartHostAsync("xen-passphrase", Address(8), NewBootId());
        try
        {
            var encrypted = TestKeys.GenerateEd25519(_temp.Path, "encrypted", passphrase: "correct horse");
            var probe = new SshHostProbe(fixture.Options() with { PrivateKeyPath = encrypted });

            var result = await probe.GetBootIdAsync("xen-passphrase", Address(8));

            Assert.Equal(ProbeOutcome.AuthFailed, result.Outcome);
            Assert.Contains("ROLLREBOOT_SSH_KEY_PASSPHRASE", result.Detail, StringComparison.Ordinal);
            Assert.DoesNotContain("correct horse", result.Detail, StringComparison.Ordinal);
        }
        finally
        {
            await Sshd.StopHostAsync("xen-passphrase");
        }
    }

    [Fact]
    public async Task GetBootId_StoppedHost_IsHostDown()
    {
        await Sshd.StartHostAsync("xen-down", Address(9), NewBootId());
        await Sshd.StopHostAsync("xen-down");
        Assert.False(Sshd.IsRunning("xen-down"));
        var probe = new SshHostProbe(fixture.Options());

        var result = await probe.GetBootIdAsync("xen-down", Address(9));

        Assert.Equal(ProbeOutcome.HostDown, result.Outcome);
        Assert.Contains("connection refused", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetBootId_PortOpenButNoBanner_IsNotReadyAtConnectTimeout()
    {
        using var listener = new SilentListener(Address(10), Sshd.Port);
        var time = new FakeTimeProvider();
        var probe = new SshHostProbe(fixture.Options() with { ConnectTimeout = TimeSpan.FromSeconds(20) }, time);

        var task = probe.GetBootIdAsync("xen-silent", Address(10));
        // The TCP check and SSH.NET's own connection: once both are in, the probe waits for a banner that never comes.
        await listener.WaitForConnectionsAsync(2).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.False(task.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(20));
        var result = await task.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(ProbeOutcome.NotReady, result.Outcome);
        Assert.Contains("no SSH banner", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetBootId_PortAnswersSomethingElse_IsNotReady()
    {
        using var listener = new SilentListener(Address(11), Sshd.Port, "HTTP/1.1 400 Bad Request\r\n\r\n");
        var probe = new SshHostProbe(fixture.Options());

        var result = await probe.GetBootIdAsync("xen-http", Address(11)).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(ProbeOutcome.NotReady, result.Outcome);
        Assert.Contains("does not speak SSH", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetBootId_CancelledDuringHandshake_ThrowsOperationCanceled()
    {
        using var listener = new SilentListener(Address(12), Sshd.Port);
        using var cancellation = new CancellationTokenSource();
        var probe = new SshHostProbe(fixture.Options());

        var task = probe.GetBootIdAsync("xen-cancel", Address(12), cancellation.Token);
        await listener.WaitForConnectionsAsync(2).WaitAsync(TimeSpan.FromSeconds(20));
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    private sealed class Recorder(Action<ProbeResult> report) : IProgress<ProbeResult>
    {
        public void Report(ProbeResult value) => report(value);
    }

    /// <summary>A TCP server that accepts connections and holds them open, optionally after sending a line that is not SSH.</summary>
    private sealed class SilentListener : IDisposable
    {
        private readonly TcpListener _listener;
        private readonly List<TcpClient> _clients = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly string? _greeting;
        private readonly Lock _lock = new();
        private readonly List<(int Count, TaskCompletionSource Signal)> _waiters = [];

        public SilentListener(string address, int port, string? greeting = null)
        {
            _greeting = greeting;
            _listener = new TcpListener(IPAddress.Parse(address), port);
            _listener.Start();
            _ = AcceptLoopAsync();
        }

        public Task WaitForConnectionsAsync(int count)
        {
            lock (_lock)
            {
                if (_clients.Count >= count)
                {
                    return Task.CompletedTask;
                }

                var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, signal));
                return signal.Task;
            }
        }

        private async Task AcceptLoopAsync()
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    if (_greeting is not null)
                    {
                        await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes(_greeting), _stop.Token);
                        client.Client.Shutdown(SocketShutdown.Send);
                    }

                    lock (_lock)
                    {
                        _clients.Add(client);
                        foreach (var waiter in _waiters.Where(w => _clients.Count >= w.Count).ToList())
                        {
                            waiter.Signal.TrySetResult();
                            _waiters.Remove(waiter);
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
            {
                // Stopped.
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            lock (_lock)
            {
                foreach (var client in _clients)
                {
                    client.Dispose();
                }
            }

            _stop.Dispose();
        }
    }
}
