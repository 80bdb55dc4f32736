module turtlefinder.example/list

go 1.19
