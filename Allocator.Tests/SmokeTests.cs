namespace Numalloc.Tests;

public class SmokeTests
{
    [Test]
    public void Assembly_Loads() => Assert.That(typeof(Numalloc.Platform.IPlatform).Assembly.GetName().Name, Is.EqualTo("Numalloc"));
}
