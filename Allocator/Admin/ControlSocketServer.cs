using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Numalloc.Admin;

/// <summary>What the control socket serves: the admin API, one typed request at a time.</summary>
internal interface IAdminEndpoint
{
    /// <summary>Serves one request (never <see cref="AdminOp.Subscribe"/>); the reply carries <c>"ok"</c>.</summary>
    /// <exception cref="AdminRequestException">The request names something that does not exist; becomes an error reply.</exception>
    JsonObject Execute(AdminRequest request);

    /// <summary>Calls <paramref name="onEvent"/> for every hotplug event (and its progress) until the result is disposed. The callback must not block.</summary>
    IDisposable Subscribe(Action<JsonObject> onEvent);
}

/// <summary>Limits that keep one client from stalling the server or another client.</summary>
internal sealed record ControlSocketLimits
{
    /// <summary>Largest request line, bytes; a longer one gets a "too_large" reply and the connection is closed.</summary>
    public int MaxRequestBytes { get; init; } = 64 * 1024;

    /// <summary>Connections served at once; more are told "busy" and closed.</summary>
    public int MaxConnections { get; init; } = 16;

    /// <summary>A connection that sends nothing for this long is closed (subscribers excepted).</summary>
    public int IdleTimeoutMs { get; init; } = 60_000;

    /// <summary>A reply the client does not take within this long closes its connection.</summary>
    public int SendTimeoutMs { get; init; } = 5_000;

    /// <summary>Events queued for a subscriber that is not reading; past this it is disconnected.</summary>
    public int MaxQueuedEvents { get; init; } = 1024;
}

/// <summary>
/// Serves the admin API on a Unix domain socket: mode 0600, peers of another uid refused
/// (SO_PEERCRED), one JSON request per line, one JSON reply per line. Every connection has its own
/// thread with bounded reads and send/idle timeouts and the number of connections is capped, so a
/// stalled or flooding client costs one slot and never blocks allocation, the hotplug path (events
/// go through a bounded queue) or other clients.
/// </summary>
internal sealed class ControlSocketServer : IDisposable
{
    private const int SolSocket = 1, SoPeerCred = 17; // <sys/socket.h>, Linux

    private readonly IAdminEndpoint _endpoint;
    private readonly ControlSocketLimits _limits;
    private readonly Socket _listener;
    private readonly Thread _acceptThread;
    private readonly uint _uid;
    private readonly ConcurrentDictionary<Socket, byte> _connections = new();
    private volatile bool _disposed;

    /// <summary>Binds <paramref name="path"/> (replacing a stale socket file, never another kind of file), sets mode 0600 and starts serving.</summary>
    /// <exception cref="IOException">The path is taken by something that is not a socket, or cannot be bound.</exception>
    public ControlSocketServer(string path, IAdminEndpoint endpoint, ControlSocketLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("the control socket needs Linux (SO_PEERCRED)");
        Path = System.IO.Path.GetFullPath(path);
        _endpoint = endpoint;
        _limits = limits ?? new ControlSocketLimits();
        _uid = Interop.Libc.Geteuid();

        RemoveStaleSocket(Path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            _listener.Bind(new UnixDomainSocketEndPoint(Path));
            // Between bind and chmod the file has the umask's mode; the peer-uid check closes that window.
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _listener.Listen(_limits.MaxConnections);
        }
        catch (SocketException e)
        {
            _listener.Dispose();
            throw new IOException($"control socket: cannot bind {Path}: {e.Message}", e);
        }
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = "numalloc admin socket" };
        _acceptThread.Start();
    }

    /// <summary>The socket's absolute path.</summary>
    public string Path { get; }

    /// <summary>Connections open now.</summary>
    public int ConnectionCount => _connections.Count;

    private static void RemoveStaleSocket(string path)
    {
        uint? mode = Interop.Libc.FileModeOf(path);
        if (mode is null)
            return; // nothing there
        if ((mode.Value & Interop.Libc.S_IFMT) != Interop.Libc.S_IFSOCK)
            throw new IOException($"control socket: {path} exists and is not a socket; not replacing it");
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new IOException($"control socket: {path} is served by a live process; not replacing it");
            }
            catch (SocketException)
            {
                // Nobody listens: a stale socket of a process that is gone.
            }
        }
        File.Delete(path);
    }

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (SocketException) when (_disposed)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // a client that vanished before accept: nothing to serve
            }

            if (_connections.Count >= _limits.MaxConnections)
            {
                Refuse(client, "busy", "too many connections");
                continue;
            }
            _connections[client] = 0;
            if (_disposed)
            {
                // Dispose ran between Accept and the line above and did not see this client.
                _connections.TryRemove(client, out _);
                client.Dispose();
                return;
            }
            new Thread(() => Serve(client)) { IsBackground = true, Name = "numalloc admin connection" }.Start();
        }
    }

    private void Refuse(Socket client, string error, string message)
    {
        try
        {
            client.SendTimeout = _limits.SendTimeoutMs;
            client.Send(Encoding.UTF8.GetBytes(ErrorReply(error, message).ToJsonString() + "\n"));
        }
        catch (SocketException)
        {
            // The client is gone already: nothing to tell it.
        }
        finally
        {
            client.Dispose();
        }
    }

    private static JsonObject ErrorReply(string error, string message) => new() { ["ok"] = false, ["error"] = error, ["message"] = message };

    private void Serve(Socket client)
    {
        var connection = new Connection(client, _limits);
        try
        {
            uint? peer = PeerUid(client);
            if (peer != _uid)
            {
                connection.TrySend(ErrorReply("unauthorized", peer is null ? "peer credentials unavailable" : $"uid {peer} may not use this socket"));
                return;
            }

            client.ReceiveTimeout = _limits.IdleTimeoutMs;
            while (!_disposed && connection.TryReadLine(out string? line, out string? tooLarge))
            {
                if (tooLarge is not null)
                {
                    connection.TrySend(ErrorReply("too_large", tooLarge));
                    return; // the rest of an oversized line cannot be told from the next request
                }
                if (line!.Trim().Length == 0)
                    continue;
                if (!connection.TrySend(Handle(line, connection)))
                    return;
            }
        }
        catch (ObjectDisposedException)
        {
            // The server was disposed under this connection: it is closing anyway.
        }
        catch (SocketException)
        {
            // The peer went away mid-request.
        }
        finally
        {
            connection.Dispose();
            _connections.TryRemove(client, out _);
        }
    }

    private JsonObject Handle(string line, Connection connection)
    {
        try
        {
            AdminRequest request = AdminRequest.Parse(line);
            if (request.Op == AdminOp.Subscribe)
            {
                connection.StartEvents(_endpoint);
                // A subscriber may stay quiet for as long as it likes.
                connection.Socket.ReceiveTimeout = 0;
                return new JsonObject { ["ok"] = true, ["subscribed"] = true };
            }
            return _endpoint.Execute(request);
        }
        catch (AdminRequestException e)
        {
            return ErrorReply(e.Error, e.Message);
        }
#pragma warning disable CA1031 // The server outlives any one request: report the failure, keep serving.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return ErrorReply("internal", e.GetType().Name + ": " + e.Message);
        }
    }

    private static uint? PeerUid(Socket client)
    {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        Span<byte> credentials = stackalloc byte[12];
        try
        {
            int length = client.GetRawSocketOption(SolSocket, SoPeerCred, credentials);
            return length == 12 ? BitConverter.ToUInt32(credentials[4..8]) : null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    /// <summary>Stops accepting, closes every connection and removes the socket file.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _listener.Dispose();
        foreach (Socket client in _connections.Keys)
            client.Dispose();
        _acceptThread.Join(TimeSpan.FromSeconds(5));
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
            // Someone else's now, or gone: either way not ours to report.
        }
    }

    // One client: bounded line reads, serialized writes (replies and events share the socket).
    private sealed class Connection(Socket socket, ControlSocketLimits limits) : IDisposable
    {
        private readonly byte[] _buffer = new byte[limits.MaxRequestBytes + 1];
        private readonly Lock _sendLock = new();
        private int _start, _end;
        private IDisposable? _subscription;
        private BlockingCollection<JsonObject>? _events;
        private Thread? _eventThread;
        private volatile bool _closed;

        public Socket Socket { get; } = socket;

        // Reads one '\n'-terminated line of at most MaxRequestBytes; false at end of stream, on the idle timeout or an error.
        public bool TryReadLine(out string? line, out string? tooLarge)
        {
            line = null;
            tooLarge = null;
            while (true)
            {
                int newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (newline >= 0)
                {
                    line = Encoding.UTF8.GetString(_buffer, _start, newline - _start);
                    _start = newline + 1;
                    return true;
                }
                if (_start > 0)
                {
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }
                if (_end >= limits.MaxRequestBytes)
                {
                    tooLarge = $"a request is at most {limits.MaxRequestBytes} bytes";
                    return true;
                }
                int read;
                try
                {
                    read = Socket.Receive(_buffer, _end, limits.MaxRequestBytes + 1 - _end, SocketFlags.None);
                }
                catch (SocketException)
                {
                    return false;
                }
                catch (ObjectDisposedException)
                {
                    return false;
                }
                if (read == 0)
                    return false;
                _end += read;
            }
        }

        public bool TrySend(JsonObject reply)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(reply.ToJsonString() + "\n");
            lock (_sendLock)
            {
                if (_closed)
                    return false;
                try
                {
                    Socket.SendTimeout = limits.SendTimeoutMs;
                    Socket.Send(bytes);
                    return true;
                }
                catch (SocketException)
                {
                    Close();
                    return false;
                }
                catch (ObjectDisposedException)
                {
                    _closed = true;
                    return false;
                }
            }
        }

        public void StartEvents(IAdminEndpoint endpoint)
        {
            if (_events is not null)
                return;
            _events = new BlockingCollection<JsonObject>(limits.MaxQueuedEvents);
            BlockingCollection<JsonObject> events = _events;
            _eventThread = new Thread(() =>
            {
                try
                {
                    foreach (JsonObject e in events.GetConsumingEnumerable())
                    {
                        if (!TrySend(e))
                            return;
                    }
                }
                catch (ObjectDisposedException)
                {
                    // Closed while waiting: the connection is gone.
                }
            }) { IsBackground = true, Name = "numalloc admin events" };
            _eventThread.Start();
            // Never blocks the notifier: a subscriber too slow to keep up is disconnected.
            _subscription = endpoint.Subscribe(e =>
            {
                if (!_closed && !events.IsAddingCompleted && !events.TryAdd(e))
                    Close();
            });
        }

        private void Close()
        {
            _closed = true;
            try
            {
                Socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // Already down.
            }
            catch (ObjectDisposedException)
            {
                // Already disposed.
            }
        }

        public void Dispose()
        {
            _closed = true;
            _subscription?.Dispose();
            if (_events is not null)
            {
                _events.CompleteAdding();
                _eventThread!.Join(TimeSpan.FromSeconds(5));
                _events.Dispose();
            }
            Socket.Dispose();
        }
    }
}
