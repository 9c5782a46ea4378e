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
public sealed class SshHostProbe : IHostProbe
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
            return tcp;
        }

        KnownHostsFile knownHosts;
        try
        {
            knownHosts = KnownHostsFile.Load(_options.KnownHostsPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new ProbeResult(ProbeOutcome.HostKeyRejected, null,
                $"{hostName} ({endpoint}): cannot read known_hosts file '{_options.KnownHostsPath}': {ex.Message}");
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
            return new ProbeResult(ProbeOutcome.AuthFailed, null,
                $"{hostName}: cannot load SSH private key '{_options.PrivateKeyPath}' ({ex.GetType().Name}: {ex.Message}); "
                + $"check the file and {SshProbeOptions.KeyPassphraseVariable}");
        }

        using (keyFile)
        {
            return await RunAsync(hostName, address, endpoint, knownHosts, keyFile, connect.Token, cancellationToken);
        }
    }

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

    private async Task<ProbeResult> RunAsync(
        string hostName,
        string address,
        string endpoint,
        KnownHostsFile knownHosts,
        PrivateKeyFile keyFile,
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
            using var command = client.CreateCommand(_options.Command);
            command.CommandTimeout = _options.CommandTimeout;
            using (var timeout = new CancellationTokenSource(_options.CommandTimeout, _timeProvider))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken))
            {
                await command.ExecuteAsync(linked.Token);
            }

            var output = command.Result.Trim();
            var accepted = state.AcceptedNew ? $" (new host key {state.Fingerprint} added to {_options.KnownHostsPath})" : string.Empty;
            if (command.ExitStatus is not 0)
            {
                var error = command.Error.Trim();
                return new ProbeResult(ProbeOutcome.NotReady, null,
                    $"{hostName} ({endpoint}): '{_options.Command}' exited with {(command.ExitStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? command.ExitSignal ?? "no status")}"
                    + (error.Length > 0 ? $": {FirstLine(error)}" : string.Empty) + accepted);
            }

            if (output.Length == 0)
            {
                return new ProbeResult(ProbeOutcome.NotReady, null, $"{hostName} ({endpoint}): '{_options.Command}' printed nothing{accepted}");
            }

            return new ProbeResult(ProbeOutcome.Answered, output, $"{hostName} ({endpoint}) answered boot id {output}{accepted}");
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        catch (Exception ex)
        {
            return Classify(ex, hostName, endpoint, state, phase);
        }
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

    private ProbeResult Classify(Exception ex, string hostName, string endpoint, HandshakeState state, string phase)
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
                    $"{hostName} ({endpoint}): '{_options.Command}' did not answer within {_options.CommandTimeout}");
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
