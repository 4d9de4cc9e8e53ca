using Numalloc.Bench.Drill;

namespace Numalloc.Tests.Drill;

public sealed class DrillScenarioTests
{
    [Test]
    public void Default_FollowsTheIssuesScript()
    {
        var steps = DrillScenario.Default(4).Steps;

        Assert.That(steps.Select(s => s.Kind), Is.EqualTo(new[]
        {
            DrillStepKind.Steady, DrillStepKind.Offline, DrillStepKind.Online, DrillStepKind.Offline,
            DrillStepKind.Offline, DrillStepKind.OnlineAll, DrillStepKind.Steady,
        }));
        Assert.Multiple(() =>
        {
            Assert.That(steps[1], Has.Property("Target").EqualTo(DrillTarget.Zone).And.Property("Node").EqualTo(3).And.Property("Zone").EqualTo("movable"));
            Assert.That(steps[2], Has.Property("Block").EqualTo(DrillStep.NewBlockOfNode).And.Property("Node").EqualTo(2).And.Property("Fill").True);
            Assert.That(steps[3], Has.Property("Block").EqualTo(DrillStep.LastBlock).And.Property("Expect").EqualTo("ok"));
            Assert.That(steps[4], Has.Property("Node").EqualTo(1).And.Property("Zone").EqualTo("normal").And.Property("Expect").EqualTo("busy"));
        });
    }

    [Test]
    public void Parse_ReadsEveryStepForm()
    {
        var steps = DrillScenario.Parse("""
            # a comment line
            steady 1.5s
            offline node 2 timeout=250 expect=timedout   # trailing comment
            online node 2
            offline block 17
            online block 17 normal
            online zone 0 MOVABLE expect=invalid
            steady 300ms
            online all
            """).Steps;

        Assert.That(steps, Has.Count.EqualTo(8));
        Assert.Multiple(() =>
        {
            Assert.That(steps[0].Duration, Is.EqualTo(TimeSpan.FromMilliseconds(1500)));
            Assert.That(steps[1], Has.Property("Target").EqualTo(DrillTarget.Node).And.Property("TimeoutMs").EqualTo(250).And.Property("Expect").EqualTo("timedout"));
            Assert.That(steps[3].Block, Is.EqualTo(17));
            Assert.That(steps[4].Zone, Is.EqualTo("normal"));
            Assert.That(steps[5], Has.Property("Zone").EqualTo("movable").And.Property("Expect").EqualTo("invalid"));
            Assert.That(steps[6].Duration, Is.EqualTo(TimeSpan.FromMilliseconds(300)));
            Assert.That(steps[7].Kind, Is.EqualTo(DrillStepKind.OnlineAll));
        });
    }

    [TestCase("", "at least one step")]
    [TestCase("jump 3", "unknown step 'jump'")]
    [TestCase("offline zone 1", "zone is named by node and type")]
    [TestCase("offline zone 1 fast", "zone must be normal or movable")]
    [TestCase("offline block new:2", "only online can take a new block")]
    [TestCase("online block 3", "needs the zone it joins")]
    [TestCase("offline node x", "node must be a non-negative number")]
    [TestCase("offline node 1 expect=maybe", "expect must be one of")]
    [TestCase("online node 1 timeout=5", "unexpected 'timeout=5'")]
    [TestCase("steady fast", "is not a duration")]
    [TestCase("steady -1s", "is not a duration")]
    [TestCase("steady\noffline wall 1", "line 2")]
    public void Parse_RejectsBadLinesWithTheirReason(string text, string reason)
    {
        var error = Assert.Throws<FormatException>(() => DrillScenario.Parse(text));
        Assert.That(error!.Message, Does.Contain(reason));
    }
}
