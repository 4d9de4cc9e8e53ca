using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Numalloc.Admin;

namespace Numalloc.Tests.Admin;

[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ControlSocketServerTests
{
    private string _dir = null!;
    private string _path = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("numalloc-admin-").FullName;
        _path = Path.Combine(_dir, "admin.sock");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>Answers every request with what it got; can be told to hold one request until released.</summary>
    private sealed class EchoEndpoint : IAdminEndpoint
    {
        private readonly List<Action<JsonObject>> _subscribers = [];
        public List<AdminRequest> Requests { get; } = [];
        public ManualResetEventSlim? HoldOffline { get; set; }
        public ManualResetEventSlim OfflineEntered { get; } = new();

        public JsonObject Execute(AdminRequest request)
        {
            lock (Requests)
                Requests.Add(request);
            if (request.Op == AdminOp.Offline && HoldOffline is not null)
            {
                OfflineEntered.Set();
                HoldOffline.Wait(TimeSpan.FromSeconds(30));
            }
            if (request.Node == 99)
                throw new AdminRequestException("invalid", "node 99 does not exist");
            return new JsonObject { ["ok"] = true, ["op"] = AdminRequest.Name(request.Op), ["node"] = request.Node, ["zone"] = request.Zone };
        }

        public IDisposable Subscribe(Action<JsonObject> onEvent)
        {
            lock (_subscribers)
                _subscribers.Add(onEvent);
            return new Unsubscriber(this, onEvent);
        }

        public int SubscriberCount
        {
            get
            {
                lock (_subscribers)
                    return _subscribers.Count;
            }
        }

        public void Emit(JsonObject e)
        {
            Action<JsonObject>[] subscribers;
            lock (_subscribers)
                subscribers = [.. _subscribers];
            foreach (Action<JsonObject> subscriber in subscribers)
                subscriber(e.DeepClone().AsObject());
        }

        private sealed class Unsubscriber(EchoEndpoint endpoint, Action<JsonObject> callback) : IDisposable
        {
            public void Dispose()
            {
                lock (endpoint._subscribers)
                    endpoint._subscribers.Remove(callback);
            }
        }
    }

    private sealed class Client : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        private readonly StreamReader _reader;

        public Client(string path)
        {
            _socket.Connect(new UnixDomainSocketEndPoint(path));
            _socket.ReceiveTimeout = 20_000;
            _reader = new StreamReader(new NetworkStream(_socket), Encoding.UTF8);
        }

        public void SendRaw(string text) => _socket.Send(Encoding.UTF8.GetBytes(text));

        public JsonObject Request(string line)
        {
            SendRaw(line + "\n");
            return ReadReply();
        }

        public JsonObject ReadReply() => JsonNode.Parse(_reader.ReadLine() ?? throw new EndOfStreamException("the server closed the connection"))!.AsObject();

        // A server that closes with unread request bytes resets the connection: closed all the same.
        public bool IsClosedByServer()
        {
            try
            {
                return _reader.ReadLine() is null;
            }
            catch (IOException)
            {
                return true;
            }
        }

        public void Dispose()
        {
            _reader.Dispose();
            _socket.Dispose();
        }
    }

    [Test]
    public void EveryOp_RoundTripsAsATypedRequest()
    {
        var endpoint = new EchoEndpoint();
        using var server = new ControlSocketServer(_path, endpoint);
        using var client = new Client(_path);

        string[] lines =
        [
            """{"op":"topology"}""", """{"op":"stats"}""", """{"op":"blocks"}""",
            """{"op":"offline","node":1,"zone":"movable","timeout_ms":250}""", """{"op":"offline","block":7}""", """{"op":"offline","node":2}""",
            """{"op":"online","block":7,"zone":"normal"}""", """{"op":"online","node":1,"zone":"movable"}""",
            """{"op":"drain"}""", """{"op":"trim"}""", """{"op":"watermarks"}""", """{"op":"watermarks","node":0,"zone":"normal","min":10,"low":20,"high":30}""",
        ];
        foreach (string line in lines)
            Assert.That(client.Request(line)["ok"]!.GetValue<bool>(), Is.True, line);

        Assert.That(endpoint.Requests.Select(r => r.Op), Is.EqualTo(new[]
        {
            AdminOp.Topology, AdminOp.Stats, AdminOp.Blocks, AdminOp.Offline, AdminOp.Offline, AdminOp.Offline,
            AdminOp.Online, AdminOp.Online, AdminOp.Drain, AdminOp.Trim, AdminOp.Watermarks, AdminOp.Watermarks,
        }));
        Assert.Multiple(() =>
        {
            Assert.That(endpoint.Requests[3], Is.EqualTo(new AdminRequest(AdminOp.Offline) { Node = 1, Zone = "movable", TimeoutMs = 250 }));
            Assert.That(endpoint.Requests[4], Is.EqualTo(new AdminRequest(AdminOp.Offline) { Block = 7 }));
            Assert.That(endpoint.Requests[6], Is.EqualTo(new AdminRequest(AdminOp.Online) { Block = 7, Zone = "normal" }));
            Assert.That(endpoint.Requests[11], Is.EqualTo(new AdminRequest(AdminOp.Watermarks) { Node = 0, Zone = "normal", Min = 10, Low = 20, High = 30 }));
        });
    }

    [TestCase("not json", "malformed")]
    [TestCase("[1,2]", "malformed")]
    [TestCase("""{"op":"reboot"}""", "unknown_op")]
    [TestCase("""{"op":7}""", "bad_argument")]
    [TestCase("""{"node":1}""", "bad_argument")]
    [TestCase("""{"op":"offline","node":"one","zone":"movable"}""", "bad_argument")]
    [TestCase("""{"op":"offline","node":-1}""", "bad_argument")]
    [TestCase("""{"op":"offline","node":1,"zone":"fast"}""", "bad_argument")]
    [TestCase("""{"op":"offline","node":1,"block":2}""", "bad_argument")]
    [TestCase("""{"op":"offline"}""", "bad_argument")]
    [TestCase("""{"op":"online","block":3}""", "bad_argument")]
    [TestCase("""{"op":"stats","node":1}""", "bad_argument")]
    [TestCase("""{"op":"offline","node":1,"timeout_ms":1.5}""", "bad_argument")]
    [TestCase("""{"op":"offline","node":99}""", "invalid")]
    public void BadRequest_GetsAnErrorReply_AndTheConnectionKeepsServing(string line, string error)
    {
        var endpoint = new EchoEndpoint();
        using var server = new ControlSocketServer(_path, endpoint);
        using var client = new Client(_path);

        JsonObject reply = client.Request(line);

        Assert.Multiple(() =>
        {
            Assert.That(reply["ok"]!.GetValue<bool>(), Is.False);
            Assert.That(reply["error"]!.GetValue<string>(), Is.EqualTo(error));
            Assert.That(reply["message"]!.GetValue<string>(), Is.Not.Empty);
            Assert.That(client.Request("""{"op":"stats"}""")["ok"]!.GetValue<bool>(), Is.True);
        });
    }

    [Test]
    public void OversizedRequest_IsRefusedAndClosed_AndTheServerKeepsServing()
    {
        using var server = new ControlSocketServer(_path, new EchoEndpoint(), new ControlSocketLimits { MaxRequestBytes = 1024 });
        using (var flooder = new Client(_path))
        {
            flooder.SendRaw("{\"op\":\"stats\",\"pad\":\"" + new string('x', 4096) + "\"}\n");
            JsonObject reply = flooder.ReadReply();
            Assert.That(reply["error"]!.GetValue<string>(), Is.EqualTo("too_large"));
            Assert.That(flooder.IsClosedByServer(), Is.True);
        }

        using var next = new Client(_path);
        Assert.That(next.Request("""{"op":"topology"}""")["ok"]!.GetValue<bool>(), Is.True);
    }

    [Test]
    public void StalledClient_DoesNotBlockASecondClient()
    {
        var endpoint = new EchoEndpoint { HoldOffline = new ManualResetEventSlim() };
        using var server = new ControlSocketServer(_path, endpoint);
        using var halfLine = new Client(_path);
        halfLine.SendRaw("""{"op":"sta""");
        using var slowOp = new Client(_path);
        slowOp.SendRaw("""{"op":"offline","node":1,"zone":"movable"}""" + "\n");
        Assert.That(endpoint.OfflineEntered.Wait(TimeSpan.FromSeconds(20)), Is.True);

        using var second = new Client(_path);
        Assert.That(second.Request("""{"op":"blocks"}""")["op"]!.GetValue<string>(), Is.EqualTo("blocks"));

        endpoint.HoldOffline.Set();
        Assert.That(slowOp.ReadReply()["ok"]!.GetValue<bool>(), Is.True);
        halfLine.SendRaw("ts\"}\n");
        Assert.That(halfLine.ReadReply()["op"]!.GetValue<string>(), Is.EqualTo("stats"));
    }

    [Test]
    public void ConnectionsBeyondTheCap_AreToldBusy()
    {
        using var server = new ControlSocketServer(_path, new EchoEndpoint(), new ControlSocketLimits { MaxConnections = 2 });
        using var first = new Client(_path);
        using var second = new Client(_path);
        // Both are being served once they have had a reply.
        first.Request("""{"op":"stats"}""");
        second.Request("""{"op":"stats"}""");

        using var third = new Client(_path);
        Assert.That(third.ReadReply()["error"]!.GetValue<string>(), Is.EqualTo("busy"));
    }

    [Test]
    public void Subscribe_StreamsEvents_AndASubscriberThatDoesNotReadIsDroppedWithoutBlockingTheNotifier()
    {
        var endpoint = new EchoEndpoint();
        using var server = new ControlSocketServer(_path, endpoint, new ControlSocketLimits { MaxQueuedEvents = 4, SendTimeoutMs = 500 });
        using var watcher = new Client(_path);
        Assert.That(watcher.Request("""{"op":"subscribe"}""")["subscribed"]!.GetValue<bool>(), Is.True);
        endpoint.Emit(new JsonObject { ["event"] = "going_offline", ["node"] = 3 });
        Assert.That(watcher.ReadReply()["event"]!.GetValue<string>(), Is.EqualTo("going_offline"));

        using var sleeper = new Client(_path);
        sleeper.Request("""{"op":"subscribe"}""");
        var notifier = Stopwatch.StartNew();
        var big = new JsonObject { ["event"] = "progress", ["pad"] = new string('p', 64 * 1024) };
        for (int i = 0; i < 200; i++)
            endpoint.Emit(big);
        notifier.Stop();

        // The notifier never waited on the socket: 200 events of 64 KiB to a client that reads
        // nothing would fill any socket buffer; the bounded queue dropped the sleeper instead.
        Assert.That(endpoint.SubscriberCount, Is.LessThanOrEqualTo(2));
        SpinWait.SpinUntil(() => server.ConnectionCount < 2, TimeSpan.FromSeconds(20));
        Assert.That(server.ConnectionCount, Is.LessThan(2), "the non-reading subscriber was disconnected");
        Assert.That(notifier.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), "emitting never blocked on a socket for long");
    }

    [Test]
    public void SocketFile_HasMode0600()
    {
        using var server = new ControlSocketServer(_path, new EchoEndpoint());
        Assert.That(File.GetUnixFileMode(_path), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
    }

    [Test]
    public void ExistingRegularFile_IsNotReplaced()
    {
        File.WriteAllText(_path, "precious");
        Assert.That(() => new ControlSocketServer(_path, new EchoEndpoint()), Throws.TypeOf<IOException>().With.Message.Contains("not a socket"));
        Assert.That(File.ReadAllText(_path), Is.EqualTo("precious"));
    }

    [Test]
    public void StaleSocket_IsReplaced_ButALiveOneIsNot()
    {
        using (var live = new ControlSocketServer(_path, new EchoEndpoint()))
        {
            Assert.That(() => new ControlSocketServer(_path, new EchoEndpoint()), Throws.TypeOf<IOException>().With.Message.Contains("live process"));
        }
        // A socket file whose server is gone.
        using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            stale.Bind(new UnixDomainSocketEndPoint(_path));
        using var server = new ControlSocketServer(_path, new EchoEndpoint());
        using var client = new Client(_path);
        Assert.That(client.Request("""{"op":"stats"}""")["ok"]!.GetValue<bool>(), Is.True);
    }

    [Test]
    public void PeerOfAnotherUid_IsRefused()
    {
        if (Interop.Libc.Geteuid() != 0 || !File.Exists("/usr/bin/setpriv") || !File.Exists("/usr/bin/perl"))
            Assert.Ignore("needs root, setpriv and perl to connect as another uid");
        using var server = new ControlSocketServer(_path, new EchoEndpoint());
        // The file mode alone keeps nobody out ...
        Assert.That(RunAsNobody(_path), Does.Contain("connect failed"));

        // ... and with the mode opened up, the peer-credential check still does.
        File.SetUnixFileMode(_dir, (UnixFileMode)0x1FF);
        File.SetUnixFileMode(_path, (UnixFileMode)0x1B6);
        string output = RunAsNobody(_path);
        Assert.That(output, Does.Contain("\"error\":\"unauthorized\"").And.Contain("uid 65534"));
    }

    private static string RunAsNobody(string path)
    {
        const string script = "use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or do { print \"connect failed: $!\\n\"; exit 0 }; print $s qq({\"op\":\"stats\"}\\n); my $r = <$s>; print defined $r ? $r : \"closed\\n\";";
        var start = new ProcessStartInfo("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/perl", "-e", script, path])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return output;
    }
}
