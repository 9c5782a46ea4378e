using System.Net;
using System.Net.Sockets;
using Renci.SshNet;
using Renci.SshNet.Common;
using RollingReboot.Core.Ports;

namespace RollingReboot.Ssh;

/// <summary>
/// Asks a host over SSH which boot it is in: connects, checks the host key against known_hosts, logs in with
/// a key file and runs the boot id command. Every failure comes back as a <see cref="ProbeResult"/> whose outcome
/// tells the caller whether waiting longer can help; only cancellation by the caller throws.
/// </summary>
public sealed class SshHostProbe : IHostProbe, IRemoteShell
{
    private readonly SshProbeOptions _options;
    private readonly TimeProvider _timeProvider;

    /// <param name="options">How to reach the hosts.</param>
    /// <param name="timeProvider">The clock that measures the connect and command timeouts.</param>
    /// <exception cref="SshProbeConfigurationException">The options are unusable (see <see cref="SshProbeOptions.Validate"/>).</exception>
    public SshHostProbe(SshProbeOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    public SshProbeOptions Options => _options;

    /// <inheritdoc />
    public async Task<ProbeResult> GetBootIdAsync(string hostName, string address, CancellationToken cancellationToken = default)
    {
        var (exec, endpoint) = await ConnectAndExecAsync(hostName, address, _options.Command, _options.CommandTimeout, cancellationToken);
        return BootIdFrom(exec, hostName, endpoint);
    }

    /// <summary>Runs an operator's command on the host (hooks, the needs-reboot check) with the same keys and host-key checks.</summary>
    public async Task<CommandResult> RunAsync(string hostName, string address, string command, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var (exec, endpoint) = await ConnectAndExecAsync(hostName, address, command, timeout, cancellationToken);
        var output = (exec.Output + exec.Error).Trim();
        if (exec.CommandTimedOut)
        {
            return new CommandResult(CommandStatus.TimedOut, -1, output, $"{hostName} ({endpoint}): the command did not finish within {timeout}");
        }

        if (exec.Failure is { } failure)
        {
            return new CommandResult(CommandStatus.CouldNotRun, -1, "", failure.Detail);
        }

        if (exec.ExitStatus is not { } status)
        {
            return new CommandResult(CommandStatus.CouldNotRun, -1, output, $"{hostName} ({endpoint}): the command ended without an exit status ({exec.ExitSignal ?? "no signal"})");
        }

        return new CommandResult(CommandStatus.Exited, status, output, $"{hostName} ({endpoint}) exited {status}");
    }

    private async Task<(Exec Exec, string Endpoint)> ConnectAndExecAsync(string hostName, string address, string commandText, TimeSpan commandTimeout, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        cancellationToken.ThrowIfCancellationRequested();
        var endpoint = KnownHostsFile.HostKeyName(address, _options.Port);

        // One deadline covers the TCP connection, the SSH handshake and authentication.
        using var connectTimeout = new CancellationTokenSource(_options.ConnectTimeout, _timeProvider);
        using var connect = CancellationTokenSource.CreateLinkedTokenSource(connectTimeout.Token, cancellationToken);

        // Connecting once ourselves first separates "nothing listens" (host down) from "something listens
        // but does not speak SSH yet" (not ready), which SSH.NET reports with the same timeout exception.
        var tcp = await CheckTcpAsync(address, endpoint, connectTimeout, connect.Token, cancellationToken);
        if (tcp is not null)
        {
            return (Failed(tcp), endpoint);
        }

        KnownHostsFile knownHosts;
        try
        {
            knownHosts = KnownHostsFile.Load(_options.KnownHostsPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (Failed(new ProbeResult(ProbeOutcome.HostKeyRejected, null,
                $"{hostName} ({endpoint}): cannot read known_hosts file '{_options.KnownHostsPath}': {ex.Message}")), endpoint);
        }

        PrivateKeyFile keyFile;
        try
        {
            keyFile = _options.KeyPassphrase is null
                ? new PrivateKeyFile(_options.PrivateKeyPath)
                : new PrivateKeyFile(_options.PrivateKeyPath, _options.KeyPassphrase);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return (Failed(new ProbeResult(ProbeOutcome.AuthFailed, null,
                $"{hostName}: cannot load SSH private key '{_options.PrivateKeyPath}' ({ex.GetType().Name}: {ex.Message}); "
                + $"check the file and {SshProbeOptions.KeyPassphraseVariable}")), endpoint);
        }

        using (keyFile)
        {
            return (await ExecAsync(hostName, address, endpoint, knownHosts, keyFile, commandText, commandTimeout, connect.Token, cancellationToken), endpoint);
        }
    }

    private static Exec Failed(ProbeResult failure) => new(failure, false, null, null, "", "", "");

    private async Task<ProbeResult?> CheckTcpAsync(
        string address, string endpoint, CancellationTokenSource timeout, CancellationToken connectToken, CancellationToken cancellationToken)
    {
        try
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            if (IPAddress.TryParse(address, out var ip))
            {
                await socket.ConnectAsync(new IPEndPoint(ip, _options.Port), connectToken);
            }
            else
            {
                await socket.ConnectAsync(address, _options.Port, connectToken);
            }

            return null;
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // A cancelled connect may surface as a SocketException (operation aborted): it is the caller's cancellation.
            throw new OperationCanceledException(cancellationToken);
        }
        catch (Exception ex) when (timeout.IsCancellationRequested && ex is OperationCanceledException or SocketException)
        {
            return new ProbeResult(ProbeOutcome.HostDown, null, $"{endpoint}: no TCP answer within {_options.ConnectTimeout}");
        }
        catch (SocketException ex)
        {
            return new ProbeResult(ProbeOutcome.HostDown, null, $"{endpoint}: {Describe(ex.SocketErrorCode)} ({ex.Message})");
        }
    }

    /// <summary>What one SSH command execution gave: a failure to connect/authenticate/finish, or an exit.</summary>
    private sealed record Exec(ProbeResult? Failure, bool CommandTimedOut, int? ExitStatus, string? ExitSignal, string Output, string Error, string Accepted);

    private async Task<Exec> ExecAsync(
        string hostName,
        string address,
        string endpoint,
        KnownHostsFile knownHosts,
        PrivateKeyFile keyFile,
        string commandText,
        TimeSpan commandTimeout,
        CancellationToken connectToken,
        CancellationToken cancellationToken)
    {
        var state = new HandshakeState();
        var phase = "connect";
        try
        {
            using var connectionInfo = new PrivateKeyConnectionInfo(address, _options.Port, _options.User, keyFile)
            {
                Timeout = _options.ConnectTimeout,
            };
            PreferKnownHostKeyTypes(connectionInfo, knownHosts.KeyTypesFor(address, _options.Port));

            using var client = new SshClient(connectionInfo);
            client.ServerIdentificationReceived += (_, _) => state.BannerSeen = true;
            client.HostKeyReceived += (_, e) => e.CanTrust = VerifyHostKey(hostName, address, endpoint, knownHosts, e.HostKey, state);

            await client.ConnectAsync(connectToken);

            phase = "command";
            using var command = client.CreateCommand(commandText);
            command.CommandTimeout = commandTimeout;
            using (var timeout = new CancellationTokenSource(commandTimeout, _timeProvider))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken))
            {
                await command.ExecuteAsync(linked.Token);
            }

            var accepted = state.AcceptedNew ? $" (new host key {state.Fingerprint} added to {_options.KnownHostsPath})" : string.Empty;
            return new Exec(null, false, command.ExitStatus, command.ExitSignal, command.Result, command.Error, accepted);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        catch (Exception ex)
        {
            var timedOut = phase == "command" && ex is OperationCanceledException or SshOperationTimeoutException;
            return new Exec(Classify(ex, hostName, endpoint, state, phase, commandText, commandTimeout), timedOut, null, null, "", "", "");
        }
    }

    private ProbeResult BootIdFrom(Exec exec, string hostName, string endpoint)
    {
        if (exec.Failure is { } failure)
        {
            return failure;
        }

        var output = exec.Output.Trim();
        if (exec.ExitStatus is not 0)
        {
            var error = exec.Error.Trim();
            return new ProbeResult(ProbeOutcome.NotReady, null,
                $"{hostName} ({endpoint}): '{_options.Command}' exited with {(exec.ExitStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? exec.ExitSignal ?? "no status")}"
                + (error.Length > 0 ? $": {FirstLine(error)}" : string.Empty) + exec.Accepted);
        }

        if (output.Length == 0)
        {
            return new ProbeResult(ProbeOutcome.NotReady, null, $"{hostName} ({endpoint}): '{_options.Command}' printed nothing{exec.Accepted}");
        }

        return new ProbeResult(ProbeOutcome.Answered, output, $"{hostName} ({endpoint}) answered boot id {output}{exec.Accepted}");
    }

    private bool VerifyHostKey(string hostName, string address, string endpoint, KnownHostsFile knownHosts, byte[] hostKey, HandshakeState state)
    {
        var keyType = SshPublicKey.KeyType(hostKey) ?? "unknown";
        var fingerprint = SshPublicKey.Fingerprint(hostKey);
        state.Fingerprint = $"{keyType} {fingerprint}";
        var result = knownHosts.Lookup(address, _options.Port, hostKey);
        switch (result.Status)
        {
            case KnownHostsStatus.Match:
                return true;
            case KnownHostsStatus.Mismatch when result.Revoked:
                state.Rejection = $"{hostName} ({endpoint}): host key {keyType} {fingerprint} is marked @revoked in "
                    + $"{_options.KnownHostsPath} line {result.LineNumber}: refused";
                return false;
            case KnownHostsStatus.Mismatch:
                state.Rejection = $"{hostName} ({endpoint}): host key changed: the server presents {keyType} {fingerprint}, "
                    + $"which differs from the key in {_options.KnownHostsPath} line {result.LineNumber}. "
                    + "Someone could be intercepting the connection, or the host was reinstalled. Refused; if the change is "
                    + $"expected, remove the old key (ssh-keygen -R '{endpoint}' -f '{_options.KnownHostsPath}') and add the new one.";
                return false;
            default:
                if (_options.AcceptNew && SshPublicKey.KeyType(hostKey) is { } type)
                {
                    try
                    {
                        knownHosts.Append(address, _options.Port, type, Convert.ToBase64String(hostKey));
                        state.AcceptedNew = true;
                        return true;
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        state.Rejection = $"{hostName} ({endpoint}): cannot add host key {keyType} {fingerprint} to "
                            + $"{_options.KnownHostsPath}: {ex.Message}";
                        return false;
                    }
                }

                state.Rejection = $"{hostName} ({endpoint}): host key {keyType} {fingerprint} is not in {_options.KnownHostsPath}: refused. "
                    + $"Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_{KeyFileName(keyType)}_key.pub) and add it "
                    + $"(ssh-keyscan -p {_options.Port} {address} >> '{_options.KnownHostsPath}'), or run with --ssh-accept-new to "
                    + "accept keys of hosts met for the first time.";
                return false;
        }
    }

    private ProbeResult Classify(Exception ex, string hostName, string endpoint, HandshakeState state, string phase, string commandText, TimeSpan commandTimeout)
    {
        if (state.Rejection is { } rejection)
        {
            return new ProbeResult(ProbeOutcome.HostKeyRejected, null, rejection);
        }

        switch (ex)
        {
            case SshAuthenticationException:
                return new ProbeResult(ProbeOutcome.AuthFailed, null,
                    $"{hostName} ({endpoint}): authentication as '{_options.User}' with key '{_options.PrivateKeyPath}' failed: {ex.Message}");
            case OperationCanceledException or SshOperationTimeoutException when phase == "command":
                return new ProbeResult(ProbeOutcome.NotReady, null,
                    $"{hostName} ({endpoint}): '{commandText}' did not answer within {commandTimeout}");
            case OperationCanceledException or SshOperationTimeoutException when !state.BannerSeen:
                return new ProbeResult(ProbeOutcome.NotReady, null,
                    $"{hostName} ({endpoint}): the port accepts TCP connections but no SSH banner came within {_options.ConnectTimeout}");
            case OperationCanceledException or SshOperationTimeoutException:
                return new ProbeResult(ProbeOutcome.NotReady, null,
                    $"{hostName} ({endpoint}): the SSH handshake did not complete within {_options.ConnectTimeout}");
            case SocketException socket when socket.SocketErrorCode is SocketError.ConnectionRefused or SocketError.HostUnreachable
                or SocketError.NetworkUnreachable or SocketError.TimedOut or SocketError.HostDown:
                return new ProbeResult(ProbeOutcome.HostDown, null, $"{endpoint}: {Describe(socket.SocketErrorCode)} ({ex.Message})");
            case SshConnectionException when !state.BannerSeen:
                return new ProbeResult(ProbeOutcome.NotReady, null,
                    $"{hostName} ({endpoint}): the port accepts TCP connections but does not speak SSH: {ex.Message}");
            default:
                return new ProbeResult(ProbeOutcome.NotReady, null,
                    $"{hostName} ({endpoint}): SSH {phase} failed: {ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>
    /// Offers first the host key algorithms whose key type known_hosts holds for this host, as ssh does, so a host
    /// known by its RSA key is not refused for presenting an Ed25519 one; certificates are not offered at all since
    /// @cert-authority lines are not trusted.
    /// </summary>
    private static void PreferKnownHostKeyTypes(ConnectionInfo connectionInfo, IReadOnlyList<string> knownTypes)
    {
        var algorithms = connectionInfo.HostKeyAlgorithms;
        foreach (var certificate in algorithms.Keys.Where(k => k.Contains("-cert-", StringComparison.Ordinal)).ToList())
        {
            algorithms.Remove(certificate);
        }

        var position = 0;
        foreach (var knownType in knownTypes)
        {
            foreach (var algorithm in algorithms.Keys.Where(a => SshPublicKey.KeyTypeOfAlgorithm(a) == knownType).ToList())
            {
                algorithms.SetPosition(algorithm, position++);
            }
        }
    }

    private static string Describe(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.HostUnreachable or SocketError.HostDown => "host unreachable",
        SocketError.NetworkUnreachable => "network unreachable",
        SocketError.TimedOut => "connection timed out",
        SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData => "name does not resolve",
        _ => error.ToString(),
    };

    private static string KeyFileName(string keyType) => keyType switch
    {
        "ssh-ed25519" => "ed25519",
        "ssh-rsa" => "rsa",
        _ when keyType.StartsWith("ecdsa", StringComparison.Ordinal) => "ecdsa",
        _ => "*",
    };

    private static string FirstLine(string text)
    {
        var newline = text.IndexOf('\n', StringComparison.Ordinal);
        return newline < 0 ? text : text[..newline].TrimEnd();
    }

    private sealed class HandshakeState
    {
        private volatile bool _bannerSeen;
        private volatile bool _acceptedNew;
        private volatile string? _rejection;
        private volatile string? _fingerprint;

        public bool BannerSeen { get => _bannerSeen; set => _bannerSeen = value; }

        public bool AcceptedNew { get => _acceptedNew; set => _acceptedNew = value; }

        public string? Rejection { get => _rejection; set => _rejection = value; }

        public string? Fingerprint { get => _fingerprint; set => _fingerprint = value; }
    }
}
