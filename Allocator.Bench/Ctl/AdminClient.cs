using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Numalloc.Bench.Ctl;

/// <summary>One connection to a control socket: a request line out, a reply line back.</summary>
internal sealed class AdminClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;
    // One request and its reply at a time: the drill's sampler and its steps share a connection.
    private readonly Lock _exchange = new();

    /// <exception cref="SocketException">Nobody serves <paramref name="path"/>.</exception>
    public AdminClient(string path)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            _socket.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
        _stream = new NetworkStream(_socket, ownsSocket: true);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    /// <summary>Sends <paramref name="request"/> and returns the raw reply line.</summary>
    /// <exception cref="IOException">The server closed the connection without replying.</exception>
    public string SendRaw(JsonObject request)
    {
        lock (_exchange)
        {
            _stream.Write(Encoding.UTF8.GetBytes(request.ToJsonString() + "\n"));
            return ReadLine() ?? throw new IOException("the server closed the connection without a reply");
        }
    }

    /// <summary>Sends <paramref name="request"/> and returns the parsed reply.</summary>
    /// <exception cref="IOException">No reply, or one that is not a JSON object.</exception>
    public JsonObject Send(JsonObject request)
    {
        string line = SendRaw(request);
        try
        {
            return JsonNode.Parse(line) as JsonObject ?? throw new IOException("the server's reply is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new IOException("the server's reply is not JSON: " + e.Message, e);
        }
    }

    /// <summary>The next line from the server (events after a subscribe); null when it closed the connection.</summary>
    public string? ReadLine() => _reader.ReadLine();

    public void Dispose()
    {
        _reader.Dispose();
        _stream.Dispose();
    }
}
