using System.Net;
using System.Net.Sockets;

namespace RollingReboot.Lab.Ssh;

/// <summary>
/// A simulated host's SSH port as the network sees it: open (accepting, each connection piped to the host's real sshd)
/// while the host is up, closed while it is down, so that a connection is refused as by a host that is off and every
/// session open at the power-off is reset. The sshd behind it keeps running on a private port of the same address for
/// the lab's whole life: opening the gate takes no wall time, so a host answers SSH at the simulated moment it comes
/// up however long an sshd takes to start on a busy machine (at time scale 40, a 250 ms start would be 10 simulated
/// seconds, and on a real host sshd is up long before xapi's toolstack).
/// </summary>
internal sealed class SshGate(IPEndPoint front, IPEndPoint back, TimeProvider wallClock) : IDisposable
{
    private const int BufferBytes = 16 * 1024;
    private static readonly TimeSpan s_bindRetry = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan s_bindFor = TimeSpan.FromSeconds(5);
    private readonly Lock _lock = new();
    private readonly HashSet<Socket> _open = [];
    private TcpListener? _listener;
    private Task _accepting = Task.CompletedTask;

    public bool IsOpen
    {
        get
        {
            lock (_lock)
            {
                return _listener is not null;
            }
        }
    }

    /// <summary>
    /// Starts accepting on the host's address and SSH port. A listener closed a moment ago may still hold the port while
    /// its pending accept is being aborted (the runtime closes the socket once that operation lets go of it): the bind
    /// is tried again for a few seconds of wall time.
    /// </summary>
    /// <exception cref="SocketException">The port cannot be bound.</exception>
    public async Task OpenAsync(CancellationToken cancellationToken = default)
    {
        var start = wallClock.GetTimestamp();
        while (true)
        {
            try
            {
                Open();
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && wallClock.GetElapsedTime(start) < s_bindFor)
            {
                await Task.Delay(s_bindRetry, wallClock, cancellationToken);
            }
        }
    }

    private void Open()
    {
        lock (_lock)
        {
            if (_listener is not null)
            {
                return;
            }

            var listener = new TcpListener(front);
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Start(128);
            _listener = listener;
            _accepting = AcceptAsync(listener);
        }
    }

    /// <summary>Stops accepting (new connections are refused) and resets every connection through the gate.</summary>
    public void Close() => _ = CloseListener();

    /// <summary>As <see cref="Close"/>, then waits (bounded) until the accept loop has let go of the listener.</summary>
    public async Task CloseAsync()
    {
        var accepting = CloseListener();
        try
        {
            await accepting.WaitAsync(s_bindFor, wallClock);
        }
        catch (TimeoutException)
        {
            // OpenAsync tries the bind again for as long.
        }
    }

    private Task CloseListener()
    {
        TcpListener? listener;
        List<Socket> open;
        Task accepting;
        lock (_lock)
        {
            listener = _listener;
            _listener = null;
            open = [.. _open];
            _open.Clear();
            accepting = _accepting;
        }

        listener?.Stop();
        foreach (var socket in open)
        {
            Reset(socket);
        }

        return accepting;
    }

    public void Dispose() => Close();

    private async Task AcceptAsync(TcpListener listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                // Closed: the host went down.
                return;
            }

            _ = PipeAsync(client);
        }
    }

    private async Task PipeAsync(Socket client)
    {
        var backend = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        lock (_lock)
        {
            if (_listener is null)
            {
                Reset(client);
                backend.Dispose();
                return;
            }

            _open.Add(client);
            _open.Add(backend);
        }

        try
        {
            await backend.ConnectAsync(back);
            await Task.WhenAll(CopyAsync(client, backend), CopyAsync(backend, client));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            // One side went away (or the gate closed): end both.
        }
        finally
        {
            lock (_lock)
            {
                _open.Remove(client);
                _open.Remove(backend);
            }

            Reset(client);
            Reset(backend);
        }
    }

    /// <summary>Bytes one way until the sender closes its side, which is then closed towards the receiver.</summary>
    private static async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[BufferBytes];
        while (true)
        {
            var n = await from.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0)
            {
                to.Shutdown(SocketShutdown.Send);
                return;
            }

            var sent = 0;
            while (sent < n)
            {
                sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None);
            }
        }
    }

    /// <summary>Closes at once with a reset, as a host losing power leaves its peers.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }
}
